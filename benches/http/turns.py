"""The turn payloads the Python load scripts post: turn `k` of session `sid` re-sends `k`
question/answer exchanges as history, then asks question `k` (2k+2 nodes)."""


def turn(sid, k):
    msgs = []
    for i in range(k):
        msgs.append({"role": "user", "content": f"{sid} question {i} " + "x" * 200})
        msgs.append({"role": "assistant", "content": [{"type": "text", "text": f"{sid} answer {i} " + "y" * 400}]})
    msgs.append({"role": "user", "content": f"{sid} question {k}"})
    return {"provider": "anthropic", "request": {"model": "m", "max_tokens": 10, "messages": msgs},
            "response": {"model": "m", "done": True, "stop_reason": "end_turn",
                         "message": {"role": "assistant", "content": [{"type": "text", "text": f"{sid} answer {k}"}]},
                         "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}},
            "session": {"org_id": "", "harness_id": "claude", "harness_session_id": sid}}

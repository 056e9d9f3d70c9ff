//! What a decode may hold, and the ledger that charges it as it grows.

use std::cell::RefCell;
use std::io;
use std::rc::Rc;

use super::{Coding, EncodingError};

/// Memory the decode may hold, charged as it grows; refusing ends the decode.
///
/// The server implements it over its global body budget, so that a decode the budget
/// cannot hold is answered 429 instead of taking the memory.
pub trait Allowance {
    /// Holds at least `bytes` in total from now on, or refuses without holding more.
    fn grow_to(&mut self, bytes: usize) -> Result<(), OverAllowance>;
}

/// The allowance could not hold what the decode asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverAllowance;

/// An allowance that holds anything: for tests and tools, where only [`LAYER_CAP`] bounds a
/// decode.
///
/// [`LAYER_CAP`]: super::LAYER_CAP
#[derive(Debug, Clone, Copy, Default)]
pub struct Unlimited;

impl Allowance for Unlimited {
    fn grow_to(&mut self, _bytes: usize) -> Result<(), OverAllowance> {
        Ok(())
    }
}

/// What one decode holds: each layer's state and the plaintext handed out so far, charged
/// to the allowance as one total. Shared by the layers of a [`super::Decoding`].
pub(super) struct Ledger<'a> {
    /// The encoding value as sent, for the errors.
    value: String,
    allowance: &'a mut dyn Allowance,
    /// The coding undone last, which a failure no layer described is put on.
    last: Coding,
    /// Per layer, in the order they are undone.
    states: Vec<u64>,
    plaintext: u64,
    truncated: bool,
}

pub(super) type Shared<'a> = Rc<RefCell<Ledger<'a>>>;

impl<'a> Ledger<'a> {
    /// `codings` are the layers in the order they are undone, `last` the last of them.
    pub(super) fn new(
        value: &str,
        allowance: &'a mut dyn Allowance,
        codings: &[Coding],
        last: Coding,
    ) -> Self {
        Ledger {
            value: value.to_owned(),
            allowance,
            last,
            states: codings.iter().map(|c| super::layer::state(*c)).collect(),
            plaintext: 0,
            truncated: false,
        }
    }

    pub(super) fn value(&self) -> &str {
        &self.value
    }

    /// Charges the total held now.
    pub(super) fn charge(&mut self) -> Result<(), EncodingError> {
        let total = self.states.iter().sum::<u64>() + self.plaintext;
        self.allowance
            .grow_to(usize::try_from(total).unwrap_or(usize::MAX))
            .map_err(|OverAllowance| EncodingError::OverAllowance {
                value: self.value.clone(),
            })
    }

    /// Layer `index`'s decoder is about to hold `bytes` (it never gives memory back to the
    /// decode while it lives, so its charge only grows).
    pub(super) fn state_grows_to(&mut self, index: usize, bytes: u64) -> Result<(), EncodingError> {
        if let Some(state) = self.states.get_mut(index)
            && *state < bytes
        {
            *state = bytes;
            return self.charge();
        }
        Ok(())
    }

    /// The last layer is about to hand out `bytes` more of plaintext.
    pub(super) fn plaintext_grows_by(&mut self, bytes: u64) -> Result<(), EncodingError> {
        self.plaintext += bytes;
        self.charge()
    }

    pub(super) fn truncated(&self) -> bool {
        self.truncated
    }

    pub(super) fn mark_truncated(&mut self) {
        self.truncated = true;
    }

    /// The decode error of a failed read: the one a layer put in it, or, for an error no
    /// layer made, an undecodable last layer.
    pub(super) fn error_of(&self, error: &io::Error) -> EncodingError {
        match super::error_of(error) {
            Some(error) => error.clone(),
            None => EncodingError::Undecodable {
                value: self.value.clone(),
                coding: self.last,
                detail: error.to_string(),
            },
        }
    }
}

/// One layer's handle on the ledger.
pub(super) struct LayerCharge<'a> {
    ledger: Shared<'a>,
    index: usize,
}

impl<'a> LayerCharge<'a> {
    pub(super) fn new(ledger: Shared<'a>, index: usize) -> Self {
        LayerCharge { ledger, index }
    }

    pub(super) fn state_grows_to(&self, bytes: u64) -> Result<(), EncodingError> {
        self.ledger.borrow_mut().state_grows_to(self.index, bytes)
    }
}

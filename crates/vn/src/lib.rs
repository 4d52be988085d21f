//! Vietnamese domain knowledge for record linkage: reference tables, text forms and legacy encodings,
//! personal ID numbers, dates and administrative units.
//!
//! **Architecture invariant:** this crate is pure. It does no IO (reference tables are compiled in with
//! `include_str!`), knows nothing of Arrow, files, gRPC or linkage, and never panics on input: parsers
//! return a value or a reason. Both the generator (which corrupts text the way real systems do) and the
//! linkage engine (which repairs it) use the same tables from here, so the two can never disagree.

pub mod admin;
pub mod date;
pub mod id;
pub mod name;
pub mod reference;
pub mod shape;
pub mod text;
pub mod textkey;

/// Sex as recorded in the population database. The 12-digit PIN encodes it in its 4th digit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Sex {
    Male,
    Female,
}

impl Sex {
    /// The code used in khop's records: `M` or `F`.
    pub fn code(self) -> &'static str {
        match self {
            Sex::Male => "M",
            Sex::Female => "F",
        }
    }
}

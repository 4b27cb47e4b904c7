//! Development-only support for ocitool's tests, examples and benchmarks: the fleet generator
//! ([`fleetgen`]), which is the tests' independent oracle and writes the bundled example fleet and
//! the benchmark fleets.
//!
//! It is a dev-dependency only: nothing in the product depends on it, so nothing here ships in the
//! `ocitool` binary. It deliberately shares no credential code with `ocitool-core` (an oracle that
//! reused the code under test would agree with its bugs).

pub mod fleetgen;
pub mod instrument;
pub mod live;

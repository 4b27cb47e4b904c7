//! TODO: Reflector semantics model (issue 4).

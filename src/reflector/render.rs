//! TODO: Reflector Flux manifest rendering (issue 3).

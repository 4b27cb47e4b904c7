//! Describing library types to Rhai from the host: doc comment, read-only properties, methods
//! and printers, in the shape of Rhai's own `TypeBuilder`. A type's script name is always its
//! Rust name (the last path segment of [`std::any::type_name`]), so scripts, error messages, the
//! API reference and the code all say the same word.
//!
//! Rhai's `CustomType` cannot be implemented here for types the lower crates own (Rust's orphan
//! rule), and implementing it there would put Rhai into the domain. So the host describes each
//! type through [`ScriptVisible`]: members are registered into the engine as `TypeBuilder` would,
//! and type doc comments go into a small global module (the engine keeps those private), so
//! everything ends up in the engine metadata `ocitool api` is generated from.
//! This module only registers; it decides nothing about what a type shows. It also owns the one
//! translation from Rust and Rhai spellings of types to the script names ([`script_names`]).

use rhai::{Engine, FuncRegistration, Module, RhaiNativeFunc};
use std::marker::PhantomData;
use std::sync::{Mutex, OnceLock};

/// Rust type path → script name, for every type described through [`ScriptVisible`].
fn registered_names() -> &'static Mutex<Vec<(&'static str, String)>> {
    static NAMES: OnceLock<Mutex<Vec<(&'static str, String)>>> = OnceLock::new();
    NAMES.get_or_init(Default::default)
}

/// `text` (a Rhai error message, a type name) with Rust and Rhai-internal type spellings replaced
/// by the documented script types: `ocitool_orchestration::repo::Overlay` → `Overlay`,
/// `&str | ImmutableString | String` → `string`, `&mut T` → `T`.
pub fn script_names(text: &str) -> String {
    let mut text = text
        .replace("&str | ImmutableString | String", "string")
        .replace("ImmutableString", "string")
        .replace("&mut ", "")
        .replace("&str", "string");
    for (rust, script) in registered_names().lock().expect("not poisoned").iter() {
        text = text.replace(rust, script);
    }
    text
}

/// A library type as scripts see it.
pub trait ScriptVisible: Clone + 'static {
    fn describe(b: &mut ScriptType<'_, '_, Self>);
}

/// Registers [`ScriptVisible`] types into an engine. Type names and docs go into one global
/// module first, so that the members registered after it are documented with the script names.
pub struct TypeRegistry<'e> {
    engine: &'e mut Engine,
    docs: Module,
    members: Vec<Member>,
}

/// Registers one member into the engine with its doc comment.
type Register = Box<dyn FnOnce(&mut Engine, &[String])>;

/// One property, method or printer, registered once every type has its name.
struct Member {
    register: Register,
    comments: Vec<String>,
}

impl<'e> TypeRegistry<'e> {
    pub fn new(engine: &'e mut Engine) -> Self {
        TypeRegistry {
            engine,
            docs: Module::new(),
            members: Vec::new(),
        }
    }

    pub fn add<T: ScriptVisible>(&mut self) -> &mut Self {
        let name = script_name::<T>();
        let mut names = registered_names().lock().expect("not poisoned");
        let rust = std::any::type_name::<T>();
        if !names.iter().any(|(r, _)| *r == rust) {
            names.push((rust, name.clone()));
        }
        drop(names);
        self.docs.set_custom_type::<T>(&name);
        T::describe(&mut ScriptType {
            registry: self,
            name,
            _type: PhantomData,
        });
        self
    }

    /// Load the names and docs, then every member, into the engine.
    pub fn finish(self) {
        self.engine.register_global_module(self.docs.into());
        for member in self.members {
            (member.register)(self.engine, &member.comments);
        }
    }
}

/// `T`'s name without its module path: `ocitool_adapters::kubectl::Kubectl` → `Kubectl`.
pub fn script_name<T>() -> String {
    let full = std::any::type_name::<T>();
    full.rsplit("::").next().unwrap_or(full).to_string()
}

/// The builder handed to [`ScriptVisible::describe`]; each member may be followed by
/// `and_comments`, exactly as with Rhai's `TypeBuilder`.
pub struct ScriptType<'r, 'e, T> {
    registry: &'r mut TypeRegistry<'e>,
    name: String,
    _type: PhantomData<T>,
}

impl<T: Clone + 'static> ScriptType<'_, '_, T> {
    /// The type's doc comment.
    pub fn with_comments(&mut self, comments: &[&str]) -> &mut Self {
        self.registry
            .docs
            .set_custom_type_with_comments::<T>(&self.name, comments);
        self
    }

    /// A read-only property.
    pub fn with_get<R: Clone + 'static>(
        &mut self,
        name: &str,
        get: impl Fn(&mut T) -> R + 'static,
    ) -> &mut Self {
        self.member(FuncRegistration::new_getter(name), get)
    }

    /// A method.
    pub fn with_fn<A: 'static, const N: usize, const X: bool, R: Clone + 'static, const F: bool>(
        &mut self,
        name: &str,
        method: impl RhaiNativeFunc<A, N, X, R, F> + 'static,
    ) -> &mut Self {
        self.member(FuncRegistration::new(name), method)
    }

    /// How `print` and string interpolation show the value.
    pub fn on_print(&mut self, print: impl Fn(&mut T) -> String + 'static) -> &mut Self {
        self.member(FuncRegistration::new("to_string"), print)
    }

    /// How `debug` shows the value.
    pub fn on_debug(&mut self, debug: impl Fn(&mut T) -> String + 'static) -> &mut Self {
        self.member(FuncRegistration::new("to_debug"), debug)
    }

    /// The doc comment of the member registered just before.
    pub fn and_comments(&mut self, comments: &[&str]) -> &mut Self {
        if let Some(last) = self.registry.members.last_mut() {
            last.comments = comments.iter().map(|c| c.to_string()).collect();
        }
        self
    }

    fn member<A: 'static, const N: usize, const X: bool, R: Clone + 'static, const F: bool>(
        &mut self,
        registration: FuncRegistration,
        func: impl RhaiNativeFunc<A, N, X, R, F> + 'static,
    ) -> &mut Self {
        self.registry.members.push(Member {
            register: Box::new(move |engine: &mut Engine, comments: &[String]| {
                registration
                    .with_comments(comments)
                    .register_into_engine(engine, func);
            }),
            comments: Vec::new(),
        });
        self
    }
}

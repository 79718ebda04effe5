//! Handles: every native object lives in one table and is named by a `u32` that is never reused, so a freed or forged
//! handle is an error rather than a dangling pointer. Lookups are kind-checked. The table holds objects; it neither
//! checks arguments nor dispatches: an MLP or a GAN trainer is a backend object behind the core's traits.

use crate::context::Context;
use crate::core::{Gan, MlpBackend};
use crate::error::{Code, Error, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// An MLP handle's object: the MLP, and the context it computes in.
pub struct MlpObject {
    pub ctx: Arc<Context>,
    pub net: Box<dyn MlpBackend>,
}

/// A GAN handle's object: the trainer, its context, and the generator and discriminator it trains (MLP objects of
/// their own handles, which stay usable between steps).
pub struct GanObject {
    pub ctx: Arc<Context>,
    pub g: Arc<Mutex<MlpObject>>,
    pub d: Arc<Mutex<MlpObject>>,
    /// aae's encoder.
    pub e: Option<Arc<Mutex<MlpObject>>>,
    pub trainer: Box<dyn Gan>,
}

#[derive(Clone)]
pub enum Object {
    Context(Arc<Context>),
    Mlp(Arc<Mutex<MlpObject>>),
    Gan(Arc<Mutex<GanObject>>),
}

impl Object {
    fn kind(&self) -> &'static str {
        match self {
            Object::Context(_) => "context",
            Object::Mlp(_) => "mlp",
            Object::Gan(_) => "gan",
        }
    }
}

struct Table {
    next: u32,
    objects: HashMap<u32, Object>,
}

static TABLE: Mutex<Option<Table>> = Mutex::new(None);

fn table() -> MutexGuard<'static, Option<Table>> {
    // The table holds no invariant that a panic elsewhere could break, so a poisoned lock is still usable.
    TABLE.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn insert(o: Object) -> Result<u32> {
    let mut t = table();
    let t = t.get_or_insert_with(|| Table {
        next: 1,
        objects: HashMap::new(),
    });
    if t.next == u32::MAX {
        return Err(Error::new(Code::Backend, "out of handles"));
    }
    let h = t.next;
    t.next += 1;
    t.objects.insert(h, o);
    Ok(h)
}

fn get(h: u32, want: &'static str) -> Result<Object> {
    let t = table();
    match t.as_ref().and_then(|t| t.objects.get(&h)) {
        Some(o) if o.kind() == want => Ok(o.clone()),
        Some(o) => Err(Error::new(
            Code::InvalidHandle,
            format!("handle {h} is a {}, expected a {want}", o.kind()),
        )),
        None if h == 0 => Err(Error::new(
            Code::InvalidHandle,
            format!("null {want} handle (0)"),
        )),
        None => Err(Error::new(
            Code::InvalidHandle,
            format!("{want} handle {h} is not open (never created or already freed)"),
        )),
    }
}

pub fn context(h: u32) -> Result<Arc<Context>> {
    match get(h, "context")? {
        Object::Context(c) => Ok(c),
        _ => unreachable!(),
    }
}

pub fn mlp(h: u32) -> Result<Arc<Mutex<MlpObject>>> {
    match get(h, "mlp")? {
        Object::Mlp(m) => Ok(m),
        _ => unreachable!(),
    }
}

pub fn gan(h: u32) -> Result<Arc<Mutex<GanObject>>> {
    match get(h, "gan")? {
        Object::Gan(g) => Ok(g),
        _ => unreachable!(),
    }
}

/// Locks an object; a lock poisoned by a panic in an earlier call makes the object unusable (its state may be torn).
pub fn lock<T>(m: &Mutex<T>) -> Result<MutexGuard<'_, T>> {
    m.lock().map_err(|_| {
        Error::new(
            Code::InvalidState,
            "object is unusable after an internal panic; free it",
        )
    })
}

/// Removes a handle of the given kind. The object itself is dropped when its last user lets go.
pub fn remove(h: u32, want: &'static str) -> Result<()> {
    get(h, want)?;
    let mut t = table();
    t.as_mut().and_then(|t| t.objects.remove(&h));
    Ok(())
}

/// Live handles (for leak tests).
pub fn live() -> usize {
    table().as_ref().map(|t| t.objects.len()).unwrap_or(0)
}

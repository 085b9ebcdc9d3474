//! The one place that names `std::sync`, `loom`, `arc_swap` and `dashmap`.
//!
//! Everything else in the crate imports its synchronization primitives from here, so that under
//! `--cfg loom` the model checker sees every atomic, cell and lock that our own protocols use. Loom
//! cannot look inside `arc_swap` or `dashmap`; under loom they are replaced by a loom `RwLock<Arc<T>>`
//! and a loom `Mutex<HashMap>` with the same small API, so that loom checks *our* use of them and the
//! crates keep their own tests.

#[cfg(not(loom))]
pub(crate) use std::sync::{
    atomic::{fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering},
    Arc, Condvar, Mutex, MutexGuard,
};

#[cfg(loom)]
pub(crate) use loom::sync::{
    atomic::{fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering},
    Arc, Condvar, Mutex, MutexGuard,
};

/// Locks `m`, and takes its guard even if a thread panicked while holding it. Every mutex of the
/// crate is locked this way: after a bug panics one request's thread, the node goes on serving,
/// rather than failing every later request that needs the same lock.
pub(crate) fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A write-once cell (the node's identity, set by `init`). Loom does not model it, and nothing that
/// loom checks uses it, so it is std's in both builds.
pub(crate) use std::sync::OnceLock;

/// The plain `std` `Arc`, also under loom: for shared data that no protocol of ours depends on
/// (names, topics), so that loom need not model its reference count.
pub(crate) use std::sync::Arc as StdArc;

/// A busy-wait hint. Under loom this yields to the model's scheduler, as a raw
/// `core::hint::spin_loop` would spin forever inside a model.
#[inline]
pub(crate) fn spin_loop() {
    #[cfg(not(loom))]
    core::hint::spin_loop();
    #[cfg(loom)]
    loom::thread::yield_now();
}

/// Gives up the rest of this thread's time slice.
#[inline]
pub(crate) fn yield_now() {
    #[cfg(not(loom))]
    std::thread::yield_now();
    #[cfg(loom)]
    loom::thread::yield_now();
}

/// An `UnsafeCell` whose accesses loom can track. The std version mirrors loom's closure API.
#[cfg(not(loom))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(data: T) -> UnsafeCell<T> {
        UnsafeCell(core::cell::UnsafeCell::new(data))
    }

    #[inline(always)]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    #[inline(always)]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;

/// An atomically swappable `Arc<T>`: `arc_swap::ArcSwap` normally, a loom `RwLock<Arc<T>>` under loom.
#[cfg(not(loom))]
pub(crate) use arc_swap::ArcSwap;

/// What [`ArcSwap::load`] returns: arc-swap's guard normally, an owned `Arc` under loom.
#[cfg(not(loom))]
pub(crate) type Loaded<T> = arc_swap::Guard<Arc<T>>;

/// What [`ArcSwap::load`] returns: arc-swap's guard normally, an owned `Arc` under loom.
#[cfg(loom)]
pub(crate) type Loaded<T> = Arc<T>;

#[cfg(loom)]
#[derive(Debug)]
pub(crate) struct ArcSwap<T>(loom::sync::RwLock<Arc<T>>);

#[cfg(loom)]
impl<T> ArcSwap<T> {
    pub(crate) fn new(value: Arc<T>) -> Self {
        ArcSwap(loom::sync::RwLock::new(value))
    }

    pub(crate) fn from_pointee(value: T) -> Self {
        Self::new(Arc::new(value))
    }

    /// Stands in for `arc_swap::ArcSwap::load_full`.
    pub(crate) fn load_full(&self) -> Arc<T> {
        self.0.read().unwrap().clone()
    }

    /// Stands in for `arc_swap::ArcSwap::load`; returns an owned `Arc` (which derefs the same way).
    pub(crate) fn load(&self) -> Arc<T> {
        self.load_full()
    }

    pub(crate) fn store(&self, value: Arc<T>) {
        *self.0.write().unwrap() = value;
    }

    pub(crate) fn swap(&self, value: Arc<T>) -> Arc<T> {
        std::mem::replace(&mut *self.0.write().unwrap(), value)
    }
}

/// An atomically swappable `Option<Arc<T>>`: `arc_swap::ArcSwapOption` normally, a loom
/// `RwLock<Option<Arc<T>>>` under loom.
#[cfg(not(loom))]
pub(crate) use arc_swap::ArcSwapOption;

#[cfg(loom)]
#[derive(Debug)]
pub(crate) struct ArcSwapOption<T>(loom::sync::RwLock<Option<Arc<T>>>);

#[cfg(loom)]
impl<T> ArcSwapOption<T> {
    pub(crate) fn new(value: Option<Arc<T>>) -> Self {
        ArcSwapOption(loom::sync::RwLock::new(value))
    }

    pub(crate) fn load_full(&self) -> Option<Arc<T>> {
        self.0.read().unwrap().clone()
    }

    pub(crate) fn store(&self, value: Option<Arc<T>>) {
        *self.0.write().unwrap() = value;
    }
}

/// A concurrent hash map: `dashmap::DashMap` with ahash normally, a loom `Mutex<HashMap>` under loom.
#[cfg(not(loom))]
pub(crate) type DashMap<K, V> = dashmap::DashMap<K, V, ahash::RandomState>;

#[cfg(loom)]
pub(crate) use self::loom_map::DashMap;

/// The part of `DashMap`'s API the crate uses, with closures instead of guards, so that the loom
/// stand-in can offer exactly the same calls.
pub(crate) trait MapExt<K, V> {
    /// Calls `f` with the value of `key`, if any, while holding its shard's lock.
    fn get_with<Q, R>(&self, key: &Q, f: impl FnOnce(&V) -> R) -> Option<R>
    where
        K: core::borrow::Borrow<Q>,
        Q: core::hash::Hash + Eq + ?Sized;

    /// Calls `f` with the current value of `key` (`None` if absent) while holding the entry's lock,
    /// so that no other access to `key` interleaves. When `f` returns `(Some(v), r)`, `v` is stored.
    fn update<R>(&self, key: K, f: impl FnOnce(Option<&V>) -> (Option<V>, R)) -> R;

    /// A copy of every entry, in no particular order (not a consistent snapshot of the whole map).
    fn entries(&self) -> Vec<(K, V)>
    where
        K: Clone,
        V: Clone;

    /// Removes `key`; returns its value, if it was present.
    fn remove_key<Q>(&self, key: &Q) -> Option<V>
    where
        K: core::borrow::Borrow<Q>,
        Q: core::hash::Hash + Eq + ?Sized;
}

#[cfg(not(loom))]
impl<K: Eq + core::hash::Hash, V, S: core::hash::BuildHasher + Clone> MapExt<K, V>
    for dashmap::DashMap<K, V, S>
{
    fn get_with<Q, R>(&self, key: &Q, f: impl FnOnce(&V) -> R) -> Option<R>
    where
        K: core::borrow::Borrow<Q>,
        Q: core::hash::Hash + Eq + ?Sized,
    {
        self.get(key).map(|r| f(r.value()))
    }

    fn update<R>(&self, key: K, f: impl FnOnce(Option<&V>) -> (Option<V>, R)) -> R {
        match self.entry(key) {
            dashmap::Entry::Occupied(mut o) => {
                let (new, r) = f(Some(o.get()));
                if let Some(v) = new {
                    o.insert(v);
                }
                r
            }
            dashmap::Entry::Vacant(v) => {
                let (new, r) = f(None);
                if let Some(x) = new {
                    v.insert(x);
                }
                r
            }
        }
    }

    fn entries(&self) -> Vec<(K, V)>
    where
        K: Clone,
        V: Clone,
    {
        self.iter()
            .map(|r| (r.key().clone(), r.value().clone()))
            .collect()
    }

    fn remove_key<Q>(&self, key: &Q) -> Option<V>
    where
        K: core::borrow::Borrow<Q>,
        Q: core::hash::Hash + Eq + ?Sized,
    {
        self.remove(key).map(|(_, v)| v)
    }
}

#[cfg(loom)]
mod loom_map {
    use std::collections::HashMap;
    use std::hash::Hash;

    /// The loom stand-in for `DashMap`: one loom mutex around a std map. It offers the subset of
    /// DashMap's API that the crate uses, through [`MapExt`](super::MapExt).
    #[derive(Debug)]
    pub(crate) struct DashMap<K, V>(loom::sync::Mutex<HashMap<K, V>>);

    impl<K: Eq + Hash, V> Default for DashMap<K, V> {
        fn default() -> Self {
            DashMap(loom::sync::Mutex::new(HashMap::new()))
        }
    }

    impl<K: Eq + Hash, V> DashMap<K, V> {
        pub(crate) fn with_hasher(_: ahash::RandomState) -> Self {
            Self::default()
        }
    }

    impl<K: Eq + Hash, V> super::MapExt<K, V> for DashMap<K, V> {
        fn get_with<Q, R>(&self, key: &Q, f: impl FnOnce(&V) -> R) -> Option<R>
        where
            K: core::borrow::Borrow<Q>,
            Q: core::hash::Hash + Eq + ?Sized,
        {
            self.0.lock().unwrap().get(key).map(f)
        }

        fn update<R>(&self, key: K, f: impl FnOnce(Option<&V>) -> (Option<V>, R)) -> R {
            let mut map = self.0.lock().unwrap();
            let (new, r) = f(map.get(&key));
            if let Some(v) = new {
                map.insert(key, v);
            }
            r
        }

        fn entries(&self) -> Vec<(K, V)>
        where
            K: Clone,
            V: Clone,
        {
            let map = self.0.lock().unwrap();
            map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        }

        fn remove_key<Q>(&self, key: &Q) -> Option<V>
        where
            K: core::borrow::Borrow<Q>,
            Q: core::hash::Hash + Eq + ?Sized,
        {
            self.0.lock().unwrap().remove(key)
        }
    }
}

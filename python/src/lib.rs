//! `ringcast._ringcast`: the Python extension module (re-exported by the `ringcast`
//! package). Publishers, subscribers and samples with the buffer protocol, so that a
//! `Block` sample is read in place as a numpy array; blocking calls release the GIL and
//! wake for Ctrl-C.

mod errors;
mod fork;
mod keep;
mod publisher;
mod service;
mod subscriber;
mod view;
mod wait;

use pyo3::prelude::*;

/// The extension module.
// `gil_used`: the handles' bookkeeping (buffer export counts, held samples and loans)
// relies on the GIL serialising Python threads; not declared free-threading-safe.
#[pymodule(gil_used = true)]
fn _ringcast(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    m.add_class::<publisher::Publisher>()?;
    m.add_class::<publisher::Loan>()?;
    m.add_class::<subscriber::Subscriber>()?;
    m.add_class::<subscriber::Sample>()?;
    m.add_class::<service::Server>()?;
    m.add_class::<service::Request>()?;
    m.add_class::<service::Client>()?;
    m.add_class::<service::Response>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}

//! Classifiers: which results count as failures (breaker, load shed).

use crate::error::Error;

/// Decides whether a finished call failed, for the circuit breaker and
/// the adaptive limit. It sees the result with the error already made an
/// [`Error`]; refusals by our own layers never reach it (they count as
/// nothing). Any `Fn(&Result<Res, Error>) -> bool + Clone` is one (`true`
/// = failure).
pub trait Classify<Res> {
    /// `true` if the call failed.
    fn is_failure(&self, result: &Result<Res, Error>) -> bool;
}

impl<Res, F: Fn(&Result<Res, Error>) -> bool> Classify<Res> for F {
    #[inline]
    fn is_failure(&self, result: &Result<Res, Error>) -> bool {
        self(result)
    }
}

/// The default classifier: every `Err` is a failure, every `Ok` a success.
#[derive(Debug, Clone, Copy, Default)]
pub struct ErrorsFail;

impl<Res> Classify<Res> for ErrorsFail {
    #[inline]
    fn is_failure(&self, result: &Result<Res, Error>) -> bool {
        result.is_err()
    }
}

/// For HTTP: an `Err`, or a response with a 5xx status, is a failure.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerErrorsFail;

impl<B> Classify<http::Response<B>> for ServerErrorsFail {
    fn is_failure(&self, result: &Result<http::Response<B>, Error>) -> bool {
        match result {
            Ok(response) => response.status().is_server_error(),
            Err(_) => true,
        }
    }
}

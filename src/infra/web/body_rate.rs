//! A minimum rate for request bodies. A body may pause for at most `grace`
//! between pieces, and must on the whole arrive at `min_bytes_per_second` after
//! the first `grace` (the rule of Apache's mod_reqtimeout): a client that drips
//! a byte every few seconds cannot hold a connection open for hours.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use poem::{Body, Endpoint, Middleware, Request, Result};
use tokio::time::{Instant, Sleep};

#[derive(Clone, Copy, Debug)]
pub struct MinBodyRate {
    pub grace: Duration,
    pub min_bytes_per_second: u32,
}

impl<E: Endpoint> Middleware<E> for MinBodyRate {
    type Output = MinBodyRateEndpoint<E>;
    fn transform(&self, ep: E) -> Self::Output {
        MinBodyRateEndpoint(ep, *self)
    }
}

pub struct MinBodyRateEndpoint<E>(E, MinBodyRate);

impl<E: Endpoint> Endpoint for MinBodyRateEndpoint<E> {
    type Output = E::Output;
    async fn call(&self, mut req: Request) -> Result<Self::Output> {
        let has_body = req.headers().contains_key("content-length")
            || req.headers().contains_key("transfer-encoding");
        if has_body {
            let body = req.take_body().into_bytes_stream();
            req.set_body(Body::from_bytes_stream(Paced::new(body, self.1)));
        }
        self.0.call(req).await
    }
}

/// A body stream that fails with `TimedOut` once it falls behind the pace.
struct Paced<S> {
    inner: Pin<Box<S>>,
    rule: MinBodyRate,
    started: Instant,
    received: u64,
    deadline: Pin<Box<Sleep>>,
}

impl<S> Paced<S> {
    fn new(inner: S, rule: MinBodyRate) -> Self {
        let started = Instant::now();
        Paced {
            inner: Box::pin(inner),
            rule,
            started,
            received: 0,
            deadline: Box::pin(tokio::time::sleep_until(started + rule.grace)),
        }
    }

    /// The sooner of "a pause of `grace` from now" and "`grace` after the time by
    /// which the bytes received so far were due at the minimum rate".
    fn next_deadline(&self, now: Instant) -> Instant {
        let rate = f64::from(self.rule.min_bytes_per_second.max(1));
        let earned = Duration::from_secs_f64((self.received as f64 / rate).min(86_400.0 * 365.0));
        (now + self.rule.grace).min(self.started + self.rule.grace + earned)
    }
}

impl<S> Stream for Paced<S>
where
    S: Stream<Item = io::Result<Bytes>>,
{
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(piece))) => {
                self.received += piece.len() as u64;
                let deadline = self.next_deadline(Instant::now());
                self.deadline.as_mut().reset(deadline);
                Poll::Ready(Some(Ok(piece)))
            }
            Poll::Ready(other) => Poll::Ready(other),
            Poll::Pending => match self.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the request body arrived too slowly",
                )))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_deadline_is_the_sooner_of_a_pause_and_the_pace() {
        let rule = MinBodyRate {
            grace: Duration::from_secs(20),
            min_bytes_per_second: 500,
        };
        let mut p = Paced::new(futures_util::stream::empty::<io::Result<Bytes>>(), rule);
        let start = p.started;
        // A trickle: 10 bytes after 15 s must still finish by 20 s + 0.02 s.
        p.received = 10;
        let at = p.next_deadline(start + Duration::from_secs(15));
        assert_eq!(
            at,
            start + Duration::from_secs(20) + Duration::from_millis(20)
        );
        // A fast start earns time, but a pause is still cut after `grace`.
        p.received = 100_000_000;
        let now = start + Duration::from_secs(5);
        assert_eq!(p.next_deadline(now), now + Duration::from_secs(20));
    }
}

//! Bounded retries of S3 requests and transfer tasks that end with their owner.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::error::{Failure, S3Error, Target, TransientFailure};
use super::settings::S3Client;

impl S3Client {
    /// The extra time a request gets for a body of `bytes` at the minimum throughput.
    pub(crate) fn body_allowance(&self, bytes: u64) -> Duration {
        Duration::from_secs_f64(bytes as f64 / self.shared.min_throughput as f64)
    }
}

/// The retry state of one request: attempts made, the deadline of all of them.
pub(crate) struct Retrier<'a> {
    client: &'a S3Client,
    target: &'a Target,
    attempts: u32,
    deadline: Instant,
    attempt_timeout: Duration,
}

impl<'a> Retrier<'a> {
    /// Starts the retries of a request that needs `allowance` more time than one without a body.
    pub fn new(client: &'a S3Client, target: &'a Target, allowance: Duration) -> Self {
        Retrier {
            client,
            target,
            attempts: 0,
            deadline: Instant::now() + client.shared.operation_timeout + allowance,
            attempt_timeout: client.shared.attempt_timeout + allowance,
        }
    }

    /// Starts an attempt: returns its number (from 1) and how long it may take.
    pub fn begin(&mut self) -> (u32, Duration) {
        self.attempts += 1;
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        (self.attempts, self.attempt_timeout.min(remaining).max(Duration::from_millis(10)))
    }

    /// Records a failed attempt: waits the backoff when another attempt is allowed, or returns the
    /// final error.
    pub async fn pause(&mut self, failure: TransientFailure) -> Result<(), S3Error> {
        let policy = &self.client.shared.retry;
        let delay = policy.backoff(self.attempts);
        if self.attempts >= policy.max_attempts || Instant::now() + delay >= self.deadline {
            return Err(self.exhausted(failure));
        }
        tracing::debug!(
            operation = self.target.operation.api_name(),
            attempt = self.attempts,
            delay_ms = delay.as_millis() as u64,
            detail = %failure.detail,
            "S3 request failed; retrying"
        );
        tokio::time::sleep(delay).await;
        Ok(())
    }

    fn exhausted(&self, failure: TransientFailure) -> S3Error {
        let target = self.target;
        if failure.connect {
            S3Error::Unreachable {
                operation: target.operation,
                bucket: target.bucket.clone(),
                key: target.key.clone(),
                endpoint: self.client.shared.endpoint.clone(),
                attempts: self.attempts,
                detail: failure.detail,
            }
        } else {
            S3Error::Transient {
                operation: target.operation,
                bucket: target.bucket.clone(),
                key: target.key.clone(),
                attempts: self.attempts,
                detail: failure.detail,
            }
        }
    }
}

/// The failure of an attempt that took longer than allowed.
pub(crate) fn attempt_timed_out(timeout: Duration) -> TransientFailure {
    TransientFailure { detail: format!("no complete answer within {:.1} s", timeout.as_secs_f64()), connect: false }
}

/// Runs `attempt` (given the attempt number) until it succeeds, fails permanently, or the retry
/// policy or the deadline gives up.
pub(crate) async fn with_retries<T, F, Fut>(
    client: &S3Client,
    target: &Target,
    allowance: Duration,
    mut attempt: F,
) -> Result<T, S3Error>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let mut retrier = Retrier::new(client, target, allowance);
    loop {
        let (number, timeout) = retrier.begin();
        let failure = match tokio::time::timeout(timeout, attempt(number)).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(Failure::Permanent(error))) => return Err(error),
            Ok(Err(Failure::Transient(failure))) => failure,
            Err(_) => attempt_timed_out(timeout),
        };
        retrier.pause(failure).await?;
    }
}

/// A spawned transfer task that is aborted when its handle is dropped, so cancelling an upload or
/// dropping a download stops its requests.
pub(crate) struct TaskHandle<T> {
    handle: JoinHandle<Result<T, S3Error>>,
    target: Target,
}

impl<T: Send + 'static> TaskHandle<T> {
    pub fn spawn(target: Target, task: impl Future<Output = Result<T, S3Error>> + Send + 'static) -> Self {
        TaskHandle { handle: tokio::spawn(task), target }
    }
}

impl<T> TaskHandle<T> {
    /// Aborts the task and waits until it has stopped.
    pub async fn abort_and_wait(&mut self) {
        self.handle.abort();
        let _ = (&mut self.handle).await;
    }
}

impl<T> Future for TaskHandle<T> {
    type Output = Result<T, S3Error>;

    fn poll(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        Pin::new(&mut this.handle).poll(context).map(|joined| match joined {
            Ok(result) => result,
            Err(error) if error.is_panic() => Err(this.target.task("the task panicked")),
            Err(_) => Err(this.target.task("the task was cancelled")),
        })
    }
}

impl<T> Drop for TaskHandle<T> {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

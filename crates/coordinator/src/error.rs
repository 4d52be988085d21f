//! The one error type of the coordinator and its one conversion to `tonic::Status`, at the edge.

use khop_raftstore::RaftError;
use khop_scheduler::ErrorCode;
use tonic::{Code, Status};

/// The metadata key a follower names the leader's address in (see `khop-client`).
pub const LEADER_METADATA: &str = "khop-leader";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Raft(#[from] RaftError),
    /// The scheduler refused the command; nothing changed.
    #[error("{message}")]
    Refused { code: ErrorCode, message: String },
    /// A bad request; the message names the field.
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    Internal(String),
}

impl From<khop_engine::EngineError> for Error {
    fn from(e: khop_engine::EngineError) -> Error {
        use khop_engine::EngineError::*;
        match e {
            Spec { .. } | Input { .. } | BadInput { .. } => Error::InvalidArgument(e.to_string()),
            other => Error::Internal(other.to_string()),
        }
    }
}

impl From<khop_scheduler::Error> for Error {
    fn from(e: khop_scheduler::Error) -> Error {
        Error::Refused {
            code: e.code(),
            message: e.to_string(),
        }
    }
}

impl From<Error> for Status {
    fn from(e: Error) -> Status {
        let message = e.to_string();
        match e {
            Error::Raft(RaftError::NotLeader { leader }) => {
                let mut status = Status::unavailable(format!(
                    "{message}: this coordinator is a follower; send writes to the leader"
                ));
                if let Some((_, address)) = leader
                    && let Ok(value) = address.parse()
                {
                    status.metadata_mut().insert(LEADER_METADATA, value);
                }
                status
            }
            Error::Raft(RaftError::TooLarge { .. }) | Error::TooLarge(_) => {
                Status::resource_exhausted(message)
            }
            Error::Raft(RaftError::ConfChange(_)) => Status::failed_precondition(message),
            Error::Raft(RaftError::Storage(_)) | Error::Internal(_) => Status::internal(message),
            Error::Raft(RaftError::ProposalDropped | RaftError::Timeout | RaftError::Stopped) => {
                Status::unavailable(message)
            }
            Error::Refused { code, .. } => Status::new(
                match code {
                    ErrorCode::InvalidArgument => Code::InvalidArgument,
                    ErrorCode::NotFound => Code::NotFound,
                    ErrorCode::FailedPrecondition => Code::FailedPrecondition,
                    ErrorCode::AlreadyExists => Code::AlreadyExists,
                },
                message,
            ),
            Error::InvalidArgument(_) => Status::invalid_argument(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_codes() {
        let leader = Some((2, "http://127.0.0.3:7400".to_string()));
        let cases = [
            (
                Error::Raft(RaftError::NotLeader { leader }),
                Code::Unavailable,
            ),
            (Error::Raft(RaftError::Timeout), Code::Unavailable),
            (
                Error::Raft(RaftError::TooLarge { size: 2, limit: 1 }),
                Code::ResourceExhausted,
            ),
            (
                Error::InvalidArgument("x: bad".into()),
                Code::InvalidArgument,
            ),
            (
                Error::from(khop_scheduler::Error::UnknownJob("job-1".into())),
                Code::NotFound,
            ),
            (
                Error::Refused {
                    code: ErrorCode::AlreadyExists,
                    message: "exists".into(),
                },
                Code::AlreadyExists,
            ),
        ];
        for (error, code) in cases {
            assert_eq!(Status::from(error).code(), code);
        }
        let status = Status::from(Error::Raft(RaftError::NotLeader {
            leader: Some((2, "http://127.0.0.3:7400".into())),
        }));
        assert_eq!(
            status.metadata().get(LEADER_METADATA).unwrap(),
            "http://127.0.0.3:7400"
        );
    }
}

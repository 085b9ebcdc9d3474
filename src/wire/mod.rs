//! Maelstrom messages: decoding requests, encoding replies, error codes. (Skeleton.)

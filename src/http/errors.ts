// Every error the HTTP layer reports: a stable SCREAMING_CASE code, the status the server answers with,
// and a default human reason. Codes are API (tests and logs match on them); reasons may be reworded.

interface HttpErrorInfo {
  readonly status: number;
  readonly reason: string;
}

export const HTTP_ERRORS = {
  // Request line.
  INVALID_METHOD: { status: 400, reason: "Invalid character in method" },
  INVALID_URL: { status: 400, reason: "Invalid character or form of request target" },
  INVALID_VERSION: { status: 400, reason: "Malformed HTTP version" },
  VERSION_NOT_SUPPORTED: { status: 505, reason: "Only HTTP/1.0 and HTTP/1.1 are supported" },
  // Line structure.
  CR_EXPECTED: { status: 400, reason: "Bare LF: lines must end with CRLF" },
  LF_EXPECTED: { status: 400, reason: "Bare CR: CR must be followed by LF" },
  OBSOLETE_LINE_FOLDING: { status: 400, reason: "Line folding (obs-fold) is not accepted" },
  // Header fields (also used for chunked trailers).
  INVALID_HEADER_TOKEN: { status: 400, reason: "Invalid character in header name" },
  INVALID_HEADER_VALUE: { status: 400, reason: "Invalid character in header value" },
  HEADERS_TOO_LARGE: { status: 431, reason: "Request head exceeds maxHeaderBytes" },
  TOO_MANY_HEADERS: { status: 431, reason: "Request has more than maxHeaderCount header fields" },
  // Message framing.
  INVALID_CONTENT_LENGTH: { status: 400, reason: "Content-Length is not a decimal number of at most 2^53-1" },
  DUPLICATE_CONTENT_LENGTH: { status: 400, reason: "Content-Length sent more than once" },
  CONTENT_LENGTH_WITH_TRANSFER_ENCODING: { status: 400, reason: "Both Content-Length and Transfer-Encoding sent" },
  INVALID_TRANSFER_ENCODING: { status: 400, reason: "Malformed Transfer-Encoding list" },
  DUPLICATE_CHUNKED: { status: 400, reason: "Transfer-Encoding names chunked more than once" },
  CHUNKED_NOT_FINAL: { status: 400, reason: "Transfer-Encoding does not end with chunked" },
  TRANSFER_ENCODING_IN_HTTP10: { status: 400, reason: "Transfer-Encoding in an HTTP/1.0 request" },
  UNKNOWN_TRANSFER_CODING: { status: 501, reason: "Transfer coding not implemented" },
  // Host.
  MISSING_HOST: { status: 400, reason: "HTTP/1.1 request without Host" },
  DUPLICATE_HOST: { status: 400, reason: "Host sent more than once" },
  INVALID_HOST: { status: 400, reason: "Invalid character in Host" },
  // Chunked body.
  INVALID_CHUNK_SIZE: { status: 400, reason: "Invalid character in chunk size" },
  CHUNK_SIZE_OVERFLOW: { status: 400, reason: "Chunk size above 2^53-1 or longer than 16 hex digits" },
  INVALID_CHUNK_EXTENSION: { status: 400, reason: "Malformed chunk extension" },
  CHUNK_EXTENSIONS_TOO_LARGE: { status: 400, reason: "Chunk extensions exceed maxChunkExtensionBytes" },
  CHUNK_DATA_CRLF_EXPECTED: { status: 400, reason: "Chunk data not followed by CRLF" },
  TRAILERS_TOO_LARGE: { status: 431, reason: "Trailer section exceeds maxTrailerBytes" },
  TOO_MANY_TRAILERS: { status: 431, reason: "More than maxTrailerCount trailer fields" },
  BODY_TOO_LARGE: { status: 413, reason: "Body exceeds maxBodyBytes" },
} as const satisfies Record<string, HttpErrorInfo>;

export type HttpErrorCode = keyof typeof HTTP_ERRORS;

/**
 * The one error type of the SDK: every failed call rejects with a JobwireError carrying the gRPC
 * status code name and, for INVALID_ARGUMENT, the fields the broker named in its
 * google.rpc.BadRequest detail. Callers never see transport errors.
 */
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { Code, ConnectError } from "@connectrpc/connect";

/** gRPC status code names, as the gRPC spec spells them. */
export type StatusCode =
  | "CANCELLED"
  | "UNKNOWN"
  | "INVALID_ARGUMENT"
  | "DEADLINE_EXCEEDED"
  | "NOT_FOUND"
  | "ALREADY_EXISTS"
  | "PERMISSION_DENIED"
  | "RESOURCE_EXHAUSTED"
  | "FAILED_PRECONDITION"
  | "ABORTED"
  | "OUT_OF_RANGE"
  | "UNIMPLEMENTED"
  | "INTERNAL"
  | "UNAVAILABLE"
  | "DATA_LOSS"
  | "UNAUTHENTICATED";

/** One malformed request field (google.rpc.BadRequest.FieldViolation). */
export interface FieldViolation {
  /** Path of the field, e.g. "task" or "requests[1].task". */
  field: string;
  /** What is wrong with it. */
  description: string;
}

const BAD_REQUEST = "google.rpc.BadRequest";

export class JobwireError extends Error {
  /** The gRPC status code name, e.g. "INVALID_ARGUMENT" or "UNAVAILABLE". */
  readonly code: StatusCode;
  /** Fields the broker rejected (from google.rpc.BadRequest); empty for other errors. */
  readonly fieldViolations: FieldViolation[];

  constructor(
    code: StatusCode,
    message: string,
    fieldViolations: FieldViolation[] = [],
    options?: { cause?: unknown },
  ) {
    super(`${code}: ${message}`, options);
    this.name = "JobwireError";
    this.code = code;
    this.fieldViolations = fieldViolations;
  }

  /** Converts any error thrown by a call; a JobwireError passes through unchanged. */
  static from(error: unknown): JobwireError {
    if (error instanceof JobwireError) return error;
    const ce = ConnectError.from(error);
    const violations: FieldViolation[] = [];
    for (const detail of ce.details) {
      // Details parsed from the wire are {type, value: bytes}; skip anything else.
      if ("type" in detail && detail.type === BAD_REQUEST) {
        violations.push(...decodeBadRequest(detail.value));
      }
    }
    return new JobwireError(codeName(ce.code), ce.rawMessage, violations, { cause: error });
  }
}

/** "INVALID_ARGUMENT" for Code.InvalidArgument (connect names codes in camel case). */
export function codeName(code: Code): StatusCode {
  const camel = Code[code] ?? "Unknown";
  return camel.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase() as StatusCode;
}

/**
 * Decodes google.rpc.BadRequest { repeated FieldViolation field_violations = 1; } with
 * FieldViolation { string field = 1; string description = 2; }. Two messages of two fields do
 * not justify shipping googleapis' generated code; unknown fields are skipped as protobuf says.
 */
export function decodeBadRequest(bytes: Uint8Array): FieldViolation[] {
  const reader = new BinaryReader(bytes);
  const out: FieldViolation[] = [];
  while (reader.pos < reader.len) {
    const [no, wireType] = reader.tag();
    if (no === 1 && wireType === WireType.LengthDelimited) {
      out.push(decodeFieldViolation(reader.bytes()));
    } else {
      reader.skip(wireType, no);
    }
  }
  return out;
}

function decodeFieldViolation(bytes: Uint8Array): FieldViolation {
  const reader = new BinaryReader(bytes);
  const violation: FieldViolation = { field: "", description: "" };
  while (reader.pos < reader.len) {
    const [no, wireType] = reader.tag();
    if (no === 1 && wireType === WireType.LengthDelimited) violation.field = reader.string();
    else if (no === 2 && wireType === WireType.LengthDelimited) violation.description = reader.string();
    else reader.skip(wireType, no);
  }
  return violation;
}

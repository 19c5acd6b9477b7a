// The JSON of etcd's v3 gateway (etcd 3.4, grpc-gateway v1 with jsonpb): the
// request bodies EtcdClient posts and strict, bounded parsers of the answers.
// Pure functions, no I/O (fuzzed: tests/fuzz/etcd_json_fuzzer.cc).
//
// What the real server (Debian's 3.4.23) answers, checked with curl:
//  * Every response has "header" {"cluster_id","member_id","revision",
//    "raft_term"}, int64s as JSON strings ("revision":"7"). proto3 JSON omits
//    a field that is 0, false or empty: a range of a missing key has no
//    "kvs", a failed txn no "succeeded", a kv with an empty value no "value",
//    a kv without a lease no "lease", a deleterange of nothing no "deleted".
//    So absence means zero, never an error.
//  * Unary errors: a non-2xx status (400 bad base64 or JSON, 404 "requested
//    lease not found", 500 for a gRPC Unknown, 503 Unavailable...) with
//    {"error":"<text>","message":"<text>","code":<gRPC code, a number>}; a
//    404 comes chunked, with a trailer "Grpc-Trailer-Content-Type".
//  * Lease keep-alive is a bidi stream in gRPC. Through the gateway a POST of
//    one message {"ID":"<id>"} is answered 200 with "Transfer-Encoding:
//    chunked", one chunk {"result":{"header":{..},"ID":"<id>","TTL":"<s>"}}
//    plus "\n", then the last chunk: the stream ends with the request body,
//    and the connection stays open (HTTP/1.1 keep-alive). Several messages in
//    one body get as many results, one chunk each. A lease that has expired,
//    been revoked or never existed is NOT an error: the result simply has no
//    "TTL" (0 omitted), so an absent or zero TTL is how "gone" reads. A
//    stream error would come in the 200 body as {"error":{"grpc_code":..,
//    "message":..}} (grpc-gateway's stream error shape), also handled.
//  * Revoke of an unknown lease: 404, code 5 (NotFound).
//  * lease/grant with TTL below the server's minimum gets the minimum back
//    (2 s with the default heartbeat); the granted TTL is in the answer.
#ifndef PIMAP_BINDINGS_ETCD_ETCD_JSON_H_
#define PIMAP_BINDINGS_ETCD_ETCD_JSON_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "bindings/etcd/etcd_client.h"

namespace pimap::etcd {

// Largest response body read or parsed (a prefix range of every user key of a
// big cluster fits; anything larger is refused, not buffered).
inline constexpr size_t kMaxResponseBytes = 4 * 1024 * 1024;

// The gateway's paths (3.4 also serves /v3beta and /v3alpha).
inline constexpr absl::string_view kRangePath = "/v3/kv/range";
inline constexpr absl::string_view kPutPath = "/v3/kv/put";
inline constexpr absl::string_view kDeletePath = "/v3/kv/deleterange";
inline constexpr absl::string_view kTxnPath = "/v3/kv/txn";
inline constexpr absl::string_view kGrantPath = "/v3/lease/grant";
inline constexpr absl::string_view kKeepAlivePath = "/v3/lease/keepalive";
inline constexpr absl::string_view kRevokePath = "/v3/lease/revoke";

// ------------------------------------------------------------ request bodies
// Keys and values are bytes (base64 on the wire); a lease of 0 is left out.

std::string GrantBody(int64_t ttl_s);
// {"ID":"<lease>"}: keep-alive and revoke.
std::string LeaseIdBody(int64_t lease);
std::string PutBody(absl::string_view key, absl::string_view value,
                    int64_t lease);
// range_end empty: `key` alone.
std::string RangeBody(absl::string_view key, absl::string_view range_end);
std::string DeleteBody(absl::string_view key, absl::string_view range_end);
// compare create_revision(key) == 0; success: put; failure: range of key.
std::string PutIfAbsentBody(absl::string_view key, absl::string_view value,
                            int64_t lease);
// compare value(key) == expected; success: delete; failure: range of key.
std::string DeleteIfValueBody(absl::string_view key,
                              absl::string_view expected);

// ------------------------------------------------------------------ parsers
// Each takes a 2xx body; a body that is an error object (either shape above)
// becomes that error. Malformed JSON, a wrong type, a bad int64 string or bad
// base64: InvalidArgument. More than kMaxResponseBytes: ResourceExhausted.

// A non-2xx answer: the error body's message and gRPC code (absl's codes are
// gRPC's), else a status for the HTTP code alone.
absl::Status ErrorStatus(int http_status, absl::string_view body);

absl::StatusOr<LeaseGrant> ParseGrant(absl::string_view body);
// The lease's TTL now; NotFound when the lease is gone (TTL absent or 0).
absl::StatusOr<int64_t> ParseKeepAlive(absl::string_view body);
// Revoke, and put: the header's revision.
absl::StatusOr<int64_t> ParseRevision(absl::string_view body);
absl::StatusOr<RangeResult> ParseRange(absl::string_view body);
// The deleted count.
absl::StatusOr<int64_t> ParseDelete(absl::string_view body);
// The txn of PutIfAbsentBody or DeleteIfValueBody: when it failed, the first
// key of the failure branch's range is `current`.
absl::StatusOr<TxnResult> ParseTxn(absl::string_view body);

}  // namespace pimap::etcd

#endif  // PIMAP_BINDINGS_ETCD_ETCD_JSON_H_

// The JSON of etcd's v3 gRPC gateway (etcd 3.4): request bodies and strict response parsing.
//
// The gateway encodes bytes (keys, values) as base64 and int64 fields as JSON strings, and
// omits every field that has its default value (0, false, "", empty list). Parsing accepts
// int64 as a string or a number, takes an absent field as its default, and turns anything
// else (not JSON, wrong types, bad base64, a missing header) into kCorrupt with a message
// that names the field. No exception leaves this module.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "dcs/dcs.h"

namespace pgwarden::dcs::etcd3 {

std::string Base64Encode(std::string_view bytes);
Result<std::string> Base64Decode(std::string_view text);

// The range_end that selects every key starting with `prefix` (etcd's "prefix end": the
// prefix with its last byte incremented, dropping trailing 0xff; "\0" for "all keys").
std::string PrefixEnd(const std::string& prefix);

// Request bodies.
std::string RangeRequest(const std::string& key, bool prefix);
std::string PutRequest(const std::string& key, const std::string& value, LeaseId lease);
std::string DeleteRangeRequest(const std::string& key, bool prefix);
std::string TxnRequest(const std::vector<Compare>& compares, const std::vector<TxnOp>& success,
                       const std::vector<TxnOp>& failure);
std::string LeaseGrantRequest(std::chrono::seconds ttl);
std::string LeaseIdRequest(LeaseId id);  // keepalive, revoke, timetolive
std::string WatchCreateRequest(const std::string& prefix, Revision start_revision);

// Response bodies of a 200 answer.
Result<RangeResult> ParseRangeResponse(std::string_view body);
Result<Revision> ParsePutResponse(std::string_view body);
Result<int64_t> ParseDeleteRangeResponse(std::string_view body);
// The number of GetOps in each branch tells how many ranges to expect.
Result<TxnResult> ParseTxnResponse(std::string_view body, std::size_t success_gets,
                                   std::size_t failure_gets);
Result<LeaseGrant> ParseLeaseGrantResponse(std::string_view body);
// kNotFound when etcd answers TTL <= 0 (the lease expired or never existed).
Result<std::chrono::seconds> ParseKeepAliveResponse(std::string_view body, LeaseId id);
Result<LeaseStatus> ParseTimeToLiveResponse(std::string_view body);
// Revoke answers only a header; checked for shape.
Result<void> ParseRevokeResponse(std::string_view body);

// One message of a watch stream ({"result": {...}} or {"error": {...}}).
struct WatchMessage {
  Revision header_revision = 0;
  bool created = false;
  bool canceled = false;
  Revision compact_revision = 0;  // > 0: the start revision was compacted
  std::string cancel_reason;
  std::vector<WatchEvent> events;
};
// An {"error": ...} message becomes the mapped Error (see ErrorFromStatus).
Result<WatchMessage> ParseWatchMessage(std::string_view line);

// Maps a non-200 answer of the gateway ({"error","message","code"} with a gRPC code, or any
// body) to our error set: lease not found -> kNotFound, no leader / too many requests /
// 5xx -> kUnavailable, request timed out -> kTimeout, compacted -> kCompacted,
// invalid argument -> kInvalidArgument. `what` names the call for the message.
Error ErrorFromStatus(int http_status, std::string_view body, std::string_view what);

// True for the errors after which etcd certainly did not apply a write, so that trying
// another member is safe even for writes ("no leader", "too many requests").
bool ErrorMeansNotApplied(std::string_view body);

}  // namespace pgwarden::dcs::etcd3

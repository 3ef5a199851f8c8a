#include "dcs/etcd3/etcd_json.h"

#include <charconv>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <utility>

namespace pgwarden::dcs::etcd3 {
namespace {

using nlohmann::json;

// Thrown inside this file only; turned into kCorrupt at each Parse* entry point.
struct Malformed : std::runtime_error {
  using std::runtime_error::runtime_error;
};

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int Base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;  // '-' and '_': the URL-safe alphabet
  if (c == '/' || c == '_') return 63;
  return -1;
}

std::string Int(int64_t v) { return std::to_string(v); }

// An int64 field: a JSON string of digits or a number; absent or null is 0.
int64_t GetInt(const json& obj, const char* field) {
  auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) return 0;
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_string()) {
    const std::string& s = it->get_ref<const std::string&>();
    int64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size() || s.empty()) {
      throw Malformed(std::string("field '") + field + "' is not an int64: \"" + s + "\"");
    }
    return v;
  }
  throw Malformed(std::string("field '") + field + "' is not an int64 (" + it->type_name() + ")");
}

bool GetBool(const json& obj, const char* field) {
  auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) return false;
  if (!it->is_boolean()) throw Malformed(std::string("field '") + field + "' is not a boolean");
  return it->get<bool>();
}

std::string GetString(const json& obj, const char* field) {
  auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) return "";
  if (!it->is_string()) throw Malformed(std::string("field '") + field + "' is not a string");
  return it->get<std::string>();
}

std::string GetBytes(const json& obj, const char* field) {
  auto decoded = Base64Decode(GetString(obj, field));
  if (!decoded) throw Malformed(std::string("field '") + field + "': " + decoded.error().message);
  return std::move(*decoded);
}

const json& GetObject(const json& obj, const char* field) {
  static const json kEmpty = json::object();
  auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) return kEmpty;
  if (!it->is_object()) throw Malformed(std::string("field '") + field + "' is not an object");
  return *it;
}

const json& GetArray(const json& obj, const char* field) {
  static const json kEmpty = json::array();
  auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) return kEmpty;
  if (!it->is_array()) throw Malformed(std::string("field '") + field + "' is not an array");
  return *it;
}

json ParseObject(std::string_view body) {
  json doc = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) throw Malformed("not valid JSON");
  if (!doc.is_object()) throw Malformed("not a JSON object");
  return doc;
}

// Every answer of etcd has a header with the store's revision.
Revision HeaderRevision(const json& obj) {
  auto it = obj.find("header");
  if (it == obj.end() || !it->is_object()) throw Malformed("answer has no header");
  return GetInt(*it, "revision");
}

KeyValue ParseKv(const json& j) {
  if (!j.is_object()) throw Malformed("a kv is not an object");
  KeyValue kv;
  kv.key = GetBytes(j, "key");
  kv.value = GetBytes(j, "value");
  kv.create_revision = GetInt(j, "create_revision");
  kv.mod_revision = GetInt(j, "mod_revision");
  kv.version = GetInt(j, "version");
  kv.lease = GetInt(j, "lease");
  return kv;
}

RangeResult ParseRange(const json& obj, Revision fallback_revision) {
  RangeResult r;
  const json& header = GetObject(obj, "header");
  r.revision = GetInt(header, "revision");
  if (r.revision == 0) r.revision = fallback_revision;
  for (const auto& kv : GetArray(obj, "kvs")) r.kvs.push_back(ParseKv(kv));
  return r;
}

template <typename T, typename Fn>
Result<T> Guard(std::string_view what, std::string_view body, Fn&& fn) {
  try {
    return fn();
  } catch (const std::exception& e) {
    std::string excerpt(body.substr(0, 200));
    return Fail(ErrorCode::kCorrupt, "etcd " + std::string(what) + " answer is malformed: " +
                                         e.what() + " (body: " + excerpt + ")");
  }
}

json RequestOp(const TxnOp& op) {
  if (const auto* put = std::get_if<PutOp>(&op)) {
    json p = {{"key", Base64Encode(put->key)}, {"value", Base64Encode(put->value)}};
    if (put->lease != 0) p["lease"] = Int(put->lease);
    return {{"request_put", p}};
  }
  if (const auto* del = std::get_if<DeleteOp>(&op)) {
    json d = {{"key", Base64Encode(del->key)}};
    if (del->prefix) d["range_end"] = Base64Encode(PrefixEnd(del->key));
    return {{"request_delete_range", d}};
  }
  const auto& get = std::get<GetOp>(op);
  json g = {{"key", Base64Encode(get.key)}};
  if (get.prefix) g["range_end"] = Base64Encode(PrefixEnd(get.key));
  return {{"request_range", g}};
}

const char* TargetName(Compare::Target t) {
  switch (t) {
    case Compare::Target::kValue:
      return "VALUE";
    case Compare::Target::kCreateRevision:
      return "CREATE";
    case Compare::Target::kModRevision:
      return "MOD";
    case Compare::Target::kVersion:
      return "VERSION";
  }
  return "VALUE";
}

const char* OpName(Compare::Op op) {
  switch (op) {
    case Compare::Op::kEqual:
      return "EQUAL";
    case Compare::Op::kNotEqual:
      return "NOT_EQUAL";
    case Compare::Op::kLess:
      return "LESS";
    case Compare::Op::kGreater:
      return "GREATER";
  }
  return "EQUAL";
}

bool Contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

}  // namespace

std::string Base64Encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    uint32_t n = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8) | uint8_t(bytes[i + 2]);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
  }
  if (i + 1 == bytes.size()) {
    uint32_t n = uint8_t(bytes[i]) << 16;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += "==";
  } else if (i + 2 == bytes.size()) {
    uint32_t n = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += '=';
  }
  return out;
}

Result<std::string> Base64Decode(std::string_view text) {
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  if (text.size() % 4 == 1) {
    return Fail(ErrorCode::kCorrupt, "bad base64: length " + std::to_string(text.size()));
  }
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    int v = Base64Value(text[i]);
    if (v < 0) {
      return Fail(ErrorCode::kCorrupt,
                  "bad base64: unexpected character at offset " + std::to_string(i));
    }
    acc = (acc << 6) | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += char((acc >> bits) & 0xff);
    }
  }
  return out;
}

std::string PrefixEnd(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    if (uint8_t(end.back()) < 0xff) {
      end.back() = char(uint8_t(end.back()) + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key
}

std::string RangeRequest(const std::string& key, bool prefix) {
  json j = {{"key", Base64Encode(key)}};
  if (prefix) j["range_end"] = Base64Encode(PrefixEnd(key));
  return j.dump();
}

std::string PutRequest(const std::string& key, const std::string& value, LeaseId lease) {
  json j = {{"key", Base64Encode(key)}, {"value", Base64Encode(value)}};
  if (lease != 0) j["lease"] = Int(lease);
  return j.dump();
}

std::string DeleteRangeRequest(const std::string& key, bool prefix) {
  json j = {{"key", Base64Encode(key)}};
  if (prefix) j["range_end"] = Base64Encode(PrefixEnd(key));
  return j.dump();
}

std::string TxnRequest(const std::vector<Compare>& compares, const std::vector<TxnOp>& success,
                       const std::vector<TxnOp>& failure) {
  json cmp = json::array();
  for (const auto& c : compares) {
    json j = {
        {"key", Base64Encode(c.key)}, {"target", TargetName(c.target)}, {"result", OpName(c.op)}};
    switch (c.target) {
      case Compare::Target::kValue:
        j["value"] = Base64Encode(c.value);
        break;
      case Compare::Target::kCreateRevision:
        j["create_revision"] = Int(c.number);
        break;
      case Compare::Target::kModRevision:
        j["mod_revision"] = Int(c.number);
        break;
      case Compare::Target::kVersion:
        j["version"] = Int(c.number);
        break;
    }
    cmp.push_back(std::move(j));
  }
  json ok = json::array();
  for (const auto& op : success) ok.push_back(RequestOp(op));
  json ko = json::array();
  for (const auto& op : failure) ko.push_back(RequestOp(op));
  return json{{"compare", cmp}, {"success", ok}, {"failure", ko}}.dump();
}

std::string LeaseGrantRequest(std::chrono::seconds ttl) {
  return json{{"TTL", Int(ttl.count())}}.dump();
}

std::string LeaseIdRequest(LeaseId id) { return json{{"ID", Int(id)}}.dump(); }

std::string WatchCreateRequest(const std::string& prefix, Revision start_revision) {
  json create = {{"key", Base64Encode(prefix)}, {"range_end", Base64Encode(PrefixEnd(prefix))}};
  if (start_revision > 0) create["start_revision"] = Int(start_revision);
  return json{{"create_request", create}}.dump();
}

Result<RangeResult> ParseRangeResponse(std::string_view body) {
  return Guard<RangeResult>("range", body, [&] {
    json doc = ParseObject(body);
    Revision rev = HeaderRevision(doc);
    return ParseRange(doc, rev);
  });
}

Result<Revision> ParsePutResponse(std::string_view body) {
  return Guard<Revision>("put", body, [&] { return HeaderRevision(ParseObject(body)); });
}

Result<int64_t> ParseDeleteRangeResponse(std::string_view body) {
  return Guard<int64_t>("delete", body, [&] {
    json doc = ParseObject(body);
    HeaderRevision(doc);
    return GetInt(doc, "deleted");
  });
}

Result<TxnResult> ParseTxnResponse(std::string_view body, std::size_t success_gets,
                                   std::size_t failure_gets) {
  return Guard<TxnResult>("txn", body, [&] {
    json doc = ParseObject(body);
    TxnResult r;
    r.revision = HeaderRevision(doc);
    r.succeeded = GetBool(doc, "succeeded");
    for (const auto& resp : GetArray(doc, "responses")) {
      if (!resp.is_object()) throw Malformed("a txn response is not an object");
      auto it = resp.find("response_range");
      if (it != resp.end()) r.ranges.push_back(ParseRange(*it, r.revision));
    }
    const std::size_t expected = r.succeeded ? success_gets : failure_gets;
    if (r.ranges.size() != expected) {
      throw Malformed("expected " + std::to_string(expected) + " range responses, got " +
                      std::to_string(r.ranges.size()));
    }
    // Every range of one transaction is read at the transaction's revision.
    for (auto& range : r.ranges) range.revision = r.revision;
    return r;
  });
}

Result<LeaseGrant> ParseLeaseGrantResponse(std::string_view body) {
  return Guard<LeaseGrant>("lease grant", body, [&] {
    json doc = ParseObject(body);
    HeaderRevision(doc);
    std::string error = GetString(doc, "error");
    if (!error.empty()) throw Malformed("grant failed: " + error);
    LeaseGrant g;
    g.id = GetInt(doc, "ID");
    g.ttl = std::chrono::seconds(GetInt(doc, "TTL"));
    if (g.id == 0 || g.ttl.count() <= 0) throw Malformed("no lease ID or TTL");
    return g;
  });
}

Result<std::chrono::seconds> ParseKeepAliveResponse(std::string_view body, LeaseId id) {
  // A streaming call: the body holds one {"result": {...}} per line; the first one counts.
  std::string_view first = body.substr(0, body.find('\n'));
  auto stream_error = Guard<std::optional<Error>>("lease keep-alive", body, [&] {
    json doc = ParseObject(first);
    auto it = doc.find("error");
    if (it == doc.end()) return std::optional<Error>();
    return std::optional<Error>(ErrorFromStatus(200, it->dump(), "lease keep-alive"));
  });
  if (!stream_error) return Fail(stream_error.error());
  if (*stream_error) return Fail(**stream_error);
  auto parsed = Guard<std::pair<int64_t, int64_t>>("lease keep-alive", body, [&] {
    json doc = ParseObject(first);
    const json& result = GetObject(doc, "result");
    if (result.empty()) throw Malformed("no result");
    return std::make_pair(GetInt(result, "ID"), GetInt(result, "TTL"));
  });
  if (!parsed) return Fail(parsed.error());
  if (parsed->second <= 0) {
    return Fail(ErrorCode::kNotFound, "lease " + std::to_string(id) + " not found (expired)");
  }
  return std::chrono::seconds(parsed->second);
}

Result<LeaseStatus> ParseTimeToLiveResponse(std::string_view body) {
  return Guard<LeaseStatus>("lease time-to-live", body, [&] {
    json doc = ParseObject(body);
    HeaderRevision(doc);
    LeaseStatus s;
    s.ttl = std::chrono::seconds(GetInt(doc, "TTL"));
    s.granted_ttl = std::chrono::seconds(GetInt(doc, "grantedTTL"));
    if (s.ttl.count() < 0) s.granted_ttl = std::chrono::seconds(0);
    return s;
  });
}

Result<void> ParseRevokeResponse(std::string_view body) {
  auto r = Guard<Revision>("lease revoke", body, [&] { return HeaderRevision(ParseObject(body)); });
  if (!r) return Fail(r.error());
  return Ok();
}

Result<WatchMessage> ParseWatchMessage(std::string_view line) {
  // An error message of the stream carries the same fields as an error answer.
  auto error = Guard<std::optional<Error>>("watch", line, [&]() -> std::optional<Error> {
    json doc = ParseObject(line);
    auto it = doc.find("error");
    if (it == doc.end()) return std::nullopt;
    return ErrorFromStatus(200, it->dump(), "watch");
  });
  if (!error) return Fail(error.error());
  if (*error) return Fail(**error);

  return Guard<WatchMessage>("watch", line, [&] {
    json doc = ParseObject(line);
    auto it = doc.find("result");
    if (it == doc.end() || !it->is_object()) throw Malformed("no result");
    const json& r = *it;
    WatchMessage m;
    m.header_revision = GetInt(GetObject(r, "header"), "revision");
    m.created = GetBool(r, "created");
    m.canceled = GetBool(r, "canceled");
    m.compact_revision = GetInt(r, "compact_revision");
    m.cancel_reason = GetString(r, "cancel_reason");
    for (const auto& e : GetArray(r, "events")) {
      if (!e.is_object()) throw Malformed("an event is not an object");
      WatchEvent ev;
      std::string type = GetString(e, "type");
      if (type.empty() || type == "PUT") {
        ev.type = WatchEvent::Type::kPut;
      } else if (type == "DELETE") {
        ev.type = WatchEvent::Type::kDelete;
      } else {
        throw Malformed("unknown event type '" + type + "'");
      }
      ev.kv = ParseKv(GetObject(e, "kv"));
      if (ev.kv.mod_revision <= 0) throw Malformed("event without mod_revision");
      m.events.push_back(std::move(ev));
    }
    return m;
  });
}

Error ErrorFromStatus(int http_status, std::string_view body, std::string_view what) {
  std::string message;
  int64_t grpc_code = -1;
  try {
    json doc = json::parse(body.begin(), body.end(), nullptr, false);
    if (doc.is_object()) {
      if (doc.contains("message") && doc["message"].is_string()) {
        message = doc["message"].get<std::string>();
      } else if (doc.contains("error") && doc["error"].is_string()) {
        message = doc["error"].get<std::string>();
      }
      // An error answer has "code"; an error inside a stream has "grpc_code".
      for (const char* field : {"code", "grpc_code"}) {
        if (doc.contains(field) && doc[field].is_number_integer()) {
          grpc_code = doc[field].get<int64_t>();
        }
      }
    }
  } catch (const std::exception&) {
    // Not etcd's error shape: fall back to the status and the raw body below.
  }
  const std::string prefix = "etcd " + std::string(what) + ": ";
  if (message.empty()) {
    std::string excerpt(body.substr(0, 200));
    if (http_status >= 500) {
      return Error{ErrorCode::kUnavailable,
                   prefix + "HTTP " + std::to_string(http_status) + ": " + excerpt};
    }
    return Error{ErrorCode::kCorrupt,
                 prefix + "unexpected answer HTTP " + std::to_string(http_status) + ": " + excerpt};
  }
  ErrorCode code = ErrorCode::kFailed;
  if (Contains(message, "lease not found")) {
    code = ErrorCode::kNotFound;
  } else if (Contains(message, "no leader") || Contains(message, "too many requests") ||
             Contains(message, "leader changed") || Contains(message, "not capable") ||
             Contains(message, "stopped")) {
    code = ErrorCode::kUnavailable;
  } else if (Contains(message, "timed out") || Contains(message, "timeout")) {
    code = ErrorCode::kTimeout;
  } else if (Contains(message, "has been compacted")) {
    code = ErrorCode::kCompacted;
  } else {
    switch (grpc_code) {
      case 3:   // InvalidArgument
      case 9:   // FailedPrecondition
      case 11:  // OutOfRange (future revision)
        code = ErrorCode::kInvalidArgument;
        break;
      case 4:
        code = ErrorCode::kTimeout;
        break;  // DeadlineExceeded
      case 5:
        code = ErrorCode::kNotFound;
        break;
      case 8:   // ResourceExhausted
      case 14:  // Unavailable
        code = ErrorCode::kUnavailable;
        break;
      case 1:
        code = ErrorCode::kCancelled;
        break;
      default:
        code = http_status >= 500 ? ErrorCode::kUnavailable : ErrorCode::kFailed;
        break;
    }
  }
  return Error{code, prefix + message};
}

bool ErrorMeansNotApplied(std::string_view body) {
  return Contains(body, "etcdserver: no leader") || Contains(body, "too many requests") ||
         Contains(body, "not capable");
}

}  // namespace pgwarden::dcs::etcd3

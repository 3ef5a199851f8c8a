#include "dcs/etcd3/etcd_dcs.h"

#include <algorithm>
#include <thread>
#include <utility>

#include "dcs/etcd3/etcd_json.h"
#include "dcs/etcd3/etcd_watch.h"

namespace pgwarden::dcs {

using etcd3::Endpoint;
using etcd3::HttpConnection;

namespace {

std::size_t CountGets(const std::vector<TxnOp>& ops) {
  return static_cast<std::size_t>(std::count_if(
      ops.begin(), ops.end(), [](const TxnOp& op) { return std::holds_alternative<GetOp>(op); }));
}

bool ReadOnly(const std::vector<TxnOp>& ops) { return CountGets(ops) == ops.size(); }

}  // namespace

Result<std::unique_ptr<EtcdDcs>> EtcdDcs::Create(EtcdOptions options) {
  if (options.endpoints.empty()) {
    return Fail(ErrorCode::kInvalidArgument, "etcd: no endpoint given");
  }
  if (options.request_timeout <= Duration::zero() || options.connect_timeout <= Duration::zero()) {
    return Fail(ErrorCode::kInvalidArgument, "etcd: request and connect timeouts must be > 0");
  }
  std::vector<Endpoint> endpoints;
  for (const auto& text : options.endpoints) {
    auto ep = etcd3::ParseEndpoint(text);
    if (!ep) return Fail(ep.error());
    endpoints.push_back(std::move(*ep));
  }
  return std::unique_ptr<EtcdDcs>(new EtcdDcs(std::move(options), std::move(endpoints)));
}

EtcdDcs::EtcdDcs(EtcdOptions options, std::vector<Endpoint> endpoints)
    : options_(std::move(options)), endpoints_(std::move(endpoints)) {
  for (const auto& ep : endpoints_) {
    connections_.push_back(std::make_unique<HttpConnection>(ep, options_.connect_timeout));
  }
}

EtcdDcs::~EtcdDcs() = default;

std::string EtcdDcs::current_endpoint() const {
  std::lock_guard lock(mu_);
  return endpoints_[current_].ToString();
}

Result<std::string> EtcdDcs::Call(const char* what, const char* target, const std::string& body,
                                  Retry retry) {
  std::lock_guard lock(mu_);
  const SteadyTime deadline = SteadyClock::now() + options_.request_timeout;
  const std::size_t n = endpoints_.size();
  std::optional<Error> last;
  // Rounds over the endpoints. A new round starts only while some member answered that the
  // cluster cannot serve right now (an election: "no leader", "leader changed"), which
  // usually passes within the deadline; refused connections end the call at once.
  for (int round = 0; round < 50; ++round) {
    bool cluster_busy = false;
    for (std::size_t attempt = 0; attempt < n; ++attempt) {
      const SteadyTime now = SteadyClock::now();
      if (now >= deadline) break;
      // A retryable request leaves half of its time to the other endpoints, so one frozen
      // member cannot eat the whole deadline.
      SteadyTime attempt_deadline = deadline;
      if (retry == Retry::kSafe && attempt + 1 < n) attempt_deadline = now + (deadline - now) / 2;

      HttpConnection& conn = *connections_[current_];
      const std::string where = std::string(what) + " via " + conn.endpoint().ToString();
      bool sent = false;
      auto answer = conn.Post(target, body, attempt_deadline, &sent);
      if (answer && answer->status == 200) return std::move(answer->body);

      if (answer) {
        Error error = etcd3::ErrorFromStatus(answer->status, answer->body, where);
        const bool elsewhere = error.code == ErrorCode::kUnavailable &&
                               (retry == Retry::kSafe || etcd3::ErrorMeansNotApplied(answer->body));
        if (!elsewhere) return Fail(std::move(error));
        cluster_busy = true;
        last = std::move(error);
      } else {
        conn.Close();
        last = answer.error();
        last->message = std::string(what) + ": " + last->message;
        if (sent && retry == Retry::kOnlyIfNotSent) {
          current_ = (current_ + 1) % n;
          if (last->code != ErrorCode::kTimeout) {
            last->code = ErrorCode::kUnavailable;
            last->message += " (the write may have been applied)";
          }
          return Fail(std::move(*last));
        }
      }
      current_ = (current_ + 1) % n;
    }
    const SteadyTime now = SteadyClock::now();
    if (!cluster_busy || now >= deadline) break;
    std::this_thread::sleep_for(std::min<Duration>(std::chrono::milliseconds(100), deadline - now));
  }
  if (!last) return Fail(ErrorCode::kTimeout, std::string(what) + ": deadline passed");
  if (SteadyClock::now() >= deadline && last->code != ErrorCode::kUnavailable) {
    last->code = ErrorCode::kTimeout;
  }
  if (n > 1) last->message = "no etcd endpoint answered; last: " + last->message;
  return Fail(std::move(*last));
}

Result<RangeResult> EtcdDcs::Get(const std::string& key, bool prefix) {
  auto body = Call("get", "/v3/kv/range", etcd3::RangeRequest(key, prefix), Retry::kSafe);
  if (!body) return Fail(body.error());
  return etcd3::ParseRangeResponse(*body);
}

Result<Revision> EtcdDcs::Put(const std::string& key, const std::string& value, LeaseId lease) {
  auto body =
      Call("put", "/v3/kv/put", etcd3::PutRequest(key, value, lease), Retry::kOnlyIfNotSent);
  if (!body) return Fail(body.error());
  return etcd3::ParsePutResponse(*body);
}

Result<int64_t> EtcdDcs::Delete(const std::string& key, bool prefix) {
  auto body = Call("delete", "/v3/kv/deleterange", etcd3::DeleteRangeRequest(key, prefix),
                   Retry::kOnlyIfNotSent);
  if (!body) return Fail(body.error());
  return etcd3::ParseDeleteRangeResponse(*body);
}

Result<TxnResult> EtcdDcs::Txn(const std::vector<Compare>& compares,
                               const std::vector<TxnOp>& success,
                               const std::vector<TxnOp>& failure) {
  const Retry retry = ReadOnly(success) && ReadOnly(failure) ? Retry::kSafe : Retry::kOnlyIfNotSent;
  auto body = Call("txn", "/v3/kv/txn", etcd3::TxnRequest(compares, success, failure), retry);
  if (!body) return Fail(body.error());
  return etcd3::ParseTxnResponse(*body, CountGets(success), CountGets(failure));
}

Result<LeaseGrant> EtcdDcs::GrantLease(std::chrono::seconds ttl) {
  if (ttl.count() < 0) return Fail(ErrorCode::kInvalidArgument, "lease TTL must not be negative");
  auto body =
      Call("lease grant", "/v3/lease/grant", etcd3::LeaseGrantRequest(ttl), Retry::kOnlyIfNotSent);
  if (!body) return Fail(body.error());
  return etcd3::ParseLeaseGrantResponse(*body);
}

Result<std::chrono::seconds> EtcdDcs::KeepAlive(LeaseId id) {
  // Renewing twice is harmless: safe to retry elsewhere.
  auto body =
      Call("lease keep-alive", "/v3/lease/keepalive", etcd3::LeaseIdRequest(id), Retry::kSafe);
  if (!body) return Fail(body.error());
  return etcd3::ParseKeepAliveResponse(*body, id);
}

Result<void> EtcdDcs::RevokeLease(LeaseId id) {
  auto body =
      Call("lease revoke", "/v3/lease/revoke", etcd3::LeaseIdRequest(id), Retry::kOnlyIfNotSent);
  if (!body) return Fail(body.error());
  return etcd3::ParseRevokeResponse(*body);
}

Result<LeaseStatus> EtcdDcs::LeaseTimeToLive(LeaseId id) {
  auto body =
      Call("lease time-to-live", "/v3/lease/timetolive", etcd3::LeaseIdRequest(id), Retry::kSafe);
  if (!body) return Fail(body.error());
  return etcd3::ParseTimeToLiveResponse(*body);
}

std::unique_ptr<Watch> EtcdDcs::WatchPrefix(const std::string& prefix, Revision start_revision) {
  std::size_t first;
  {
    std::lock_guard lock(mu_);
    first = current_;
  }
  auto watch = std::make_unique<etcd3::EtcdWatch>(endpoints_, first, options_.connect_timeout,
                                                  prefix, start_revision);
  watch->Start(SteadyClock::now() + options_.request_timeout);
  return watch;
}

}  // namespace pgwarden::dcs

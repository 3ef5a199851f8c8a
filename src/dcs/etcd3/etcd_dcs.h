// EtcdDcs: the Dcs on a real etcd (3.4+), spoken to through its v3 JSON gateway over HTTP/1.1.
//
// Endpoints: a list of client URLs of the cluster's members. Requests go to the current
// endpoint over one kept-alive connection; after a connection error or a timeout the client
// moves on to the next endpoint. Within one call's deadline (request_timeout) a request is
// retried on the next endpoint only where that is safe: reads, lease keep-alives and
// time-to-live always; writes (put, delete, txn with writes, lease grant/revoke) only when
// nothing was sent (the connect failed) or etcd said it did not apply them ("no leader",
// "too many requests"). Otherwise a write whose answer was lost returns kTimeout (deadline) or
// kUnavailable (connection dropped): its outcome is unknown.
//
// Thread-safety: every method may be called from any thread; calls are serialized on the
// connection (give the lease keep-alive its own instance when latency matters). Each Watch
// has its own connection and is used by one thread at a time (Cancel() from any thread).
// See docs/etcd-client.md.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/clock.h"
#include "dcs/dcs.h"
#include "dcs/etcd3/http_client.h"  // no Boost

namespace pgwarden::dcs {

struct EtcdOptions {
  std::vector<std::string> endpoints;                  // "127.0.0.1:2379" or "http://host:port"
  Duration request_timeout = std::chrono::seconds(2);  // the whole call, retries included
  Duration connect_timeout = std::chrono::milliseconds(500);  // one TCP connect
};

class EtcdDcs final : public Dcs {
 public:
  // kInvalidArgument when there is no endpoint, one is malformed, or a timeout is not > 0.
  // Does not contact etcd: the first call does.
  static Result<std::unique_ptr<EtcdDcs>> Create(EtcdOptions options);
  ~EtcdDcs() override;

  Result<RangeResult> Get(const std::string& key, bool prefix = false) override;
  Result<Revision> Put(const std::string& key, const std::string& value,
                       LeaseId lease = 0) override;
  Result<int64_t> Delete(const std::string& key, bool prefix = false) override;
  Result<TxnResult> Txn(const std::vector<Compare>& compares, const std::vector<TxnOp>& success,
                        const std::vector<TxnOp>& failure = {}) override;
  Result<LeaseGrant> GrantLease(std::chrono::seconds ttl) override;
  Result<std::chrono::seconds> KeepAlive(LeaseId id) override;
  Result<void> RevokeLease(LeaseId id) override;
  Result<LeaseStatus> LeaseTimeToLive(LeaseId id) override;

  // Connects at once (bounded by request_timeout) so that a watch "from now" (start 0) is
  // pinned to the revision etcd reports; if etcd cannot be reached, "now" is the revision of
  // the first successful connection.
  std::unique_ptr<Watch> WatchPrefix(const std::string& prefix,
                                     Revision start_revision = 0) override;

  // The endpoint the next request tries first ("host:port").
  std::string current_endpoint() const;

 private:
  enum class Retry { kSafe, kOnlyIfNotSent };
  EtcdDcs(EtcdOptions options, std::vector<etcd3::Endpoint> endpoints);
  // POSTs `body` to `target`; the body of a 200 answer, or the mapped error.
  Result<std::string> Call(const char* what, const char* target, const std::string& body,
                           Retry retry);

  EtcdOptions options_;
  std::vector<etcd3::Endpoint> endpoints_;
  mutable std::mutex mu_;
  std::size_t current_ = 0;                                          // guarded by mu_
  std::vector<std::unique_ptr<etcd3::HttpConnection>> connections_;  // one per endpoint
};

}  // namespace pgwarden::dcs

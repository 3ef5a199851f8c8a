// EtcdWatch: a prefix watch over the gateway's streaming POST /v3/watch (internal to
// pgwarden_etcd; callers get it as a dcs::Watch from EtcdDcs::WatchPrefix).
//
// It owns its own connection. The stream carries one JSON message per line
// ({"result": {...}}); the watch remembers the first revision it has not delivered yet and,
// when the connection drops, reconnects (cycling through the endpoints, with a short
// back-off once every endpoint failed) and asks for the stream again from that revision,
// dropping any event below it, so nothing is lost or delivered twice.
#pragma once

#include <atomic>
#include <optional>
#include <string>
#include <vector>

#include "dcs/dcs.h"
#include "dcs/etcd3/http_client.h"

namespace pgwarden::dcs::etcd3 {

class EtcdWatch final : public Watch {
 public:
  EtcdWatch(std::vector<Endpoint> endpoints, std::size_t first_endpoint, Duration connect_timeout,
            std::string prefix, Revision start_revision);
  ~EtcdWatch() override;

  // Opens the stream and waits for etcd's "created" answer, by `deadline`. Failing is not an
  // error: Next() reconnects.
  void Start(SteadyTime deadline);

  Result<WatchBatch> Next(Duration timeout) override;
  void Cancel() override;

 private:
  // One attempt on the current endpoint; moves to the next one on failure.
  Result<void> OpenStream(SteadyTime deadline);
  // Reads from the open stream by `deadline` and handles every complete line.
  // Ok(false): nothing arrived in time.
  Result<bool> Pump(SteadyTime deadline);
  Result<void> Handle(std::string_view line);
  void DropStream();
  WatchBatch TakeReady();

  std::vector<Endpoint> endpoints_;
  std::size_t current_;
  std::string prefix_;
  Revision next_revision_;  // the first revision not delivered yet; 0: "now", not pinned yet
  Revision header_revision_ = 0;
  HttpStream stream_;
  std::string partial_;             // bytes of an incomplete line
  std::vector<WatchEvent> ready_;   // parsed, not delivered yet
  std::optional<Error> compacted_;  // to report once; then resume from compact_revision_
  Revision compact_revision_ = 0;
  std::optional<Error> corrupt_;    // a bad message seen by Start(), reported by Next()
  int failures_in_a_row_ = 0;
  SteadyTime retry_at_{};
  std::atomic<bool> cancelled_{false};
};

}  // namespace pgwarden::dcs::etcd3

#include "dcs/etcd3/etcd_watch.h"

#include <algorithm>
#include <thread>
#include <utility>

#include "dcs/etcd3/etcd_json.h"

namespace pgwarden::dcs::etcd3 {
namespace {

constexpr std::size_t kMaxLine = 64 * 1024 * 1024;
constexpr auto kBackoff = std::chrono::milliseconds(200);

}  // namespace

EtcdWatch::EtcdWatch(std::vector<Endpoint> endpoints, std::size_t first_endpoint,
                     Duration connect_timeout, std::string prefix, Revision start_revision)
    : endpoints_(std::move(endpoints)),
      current_(first_endpoint % std::max<std::size_t>(1, endpoints_.size())),
      prefix_(std::move(prefix)),
      next_revision_(std::max<Revision>(0, start_revision)),
      stream_(connect_timeout) {}

EtcdWatch::~EtcdWatch() = default;

void EtcdWatch::Start(SteadyTime deadline) {
  if (!OpenStream(deadline)) return;
  // Wait for "created" (it pins a watch from "now"), keeping whatever else arrives.
  for (int i = 0; i < 100 && next_revision_ == 0 && stream_.is_open(); ++i) {
    auto got = Pump(deadline);
    if (!got && got.error().code == ErrorCode::kCorrupt) corrupt_ = got.error();
    if (!got || !*got) return;
  }
}

void EtcdWatch::Cancel() {
  cancelled_ = true;
  stream_.Interrupt();
}

void EtcdWatch::DropStream() {
  stream_.Close();
  partial_.clear();
  current_ = (current_ + 1) % endpoints_.size();
}

Result<void> EtcdWatch::OpenStream(SteadyTime deadline) {
  const Endpoint& ep = endpoints_[current_];
  auto opened =
      stream_.Open(ep, "/v3/watch", WatchCreateRequest(prefix_, next_revision_), deadline);
  Error error;
  if (!opened) {
    error = opened.error();
  } else if (opened->status != 200) {
    error = ErrorFromStatus(opened->status, opened->body, "watch via " + ep.ToString());
  } else {
    failures_in_a_row_ = 0;
    partial_.clear();
    return Ok();
  }
  if (error.code == ErrorCode::kCancelled) return Fail(error);
  DropStream();
  // After every endpoint failed once, wait a little before the next round.
  if (++failures_in_a_row_ % static_cast<int>(endpoints_.size()) == 0) {
    retry_at_ = SteadyClock::now() + kBackoff;
  }
  return Fail(error);
}

Result<bool> EtcdWatch::Pump(SteadyTime deadline) {
  auto piece = stream_.Read(deadline);
  if (!piece) {
    if (piece.error().code != ErrorCode::kCancelled) DropStream();
    return Fail(piece.error());
  }
  if (piece->empty()) return false;
  partial_ += *piece;
  std::size_t start = 0;
  for (;;) {
    const std::size_t end = partial_.find('\n', start);
    if (end == std::string::npos) break;
    std::string_view line(partial_.data() + start, end - start);
    start = end + 1;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (line.empty()) continue;
    auto handled = Handle(line);
    if (!handled) {
      if (handled.error().code == ErrorCode::kCompacted) {
        // Reported once by Next(); then the watch goes on from the compaction revision,
        // the oldest one etcd still has.
        compacted_ = handled.error();
        if (compact_revision_ > 0) next_revision_ = compact_revision_;
        stream_.Close();
        partial_.clear();
      } else {
        DropStream();  // resume from next_revision_ on a fresh stream
      }
      return Fail(handled.error());
    }
  }
  partial_.erase(0, start);
  if (partial_.size() > kMaxLine) {
    DropStream();
    return Fail(ErrorCode::kCorrupt, "etcd watch: a message longer than 64 MiB");
  }
  return true;
}

Result<void> EtcdWatch::Handle(std::string_view line) {
  auto msg = ParseWatchMessage(line);
  if (!msg) return Fail(msg.error());
  header_revision_ = std::max(header_revision_, msg->header_revision);
  if (msg->compact_revision > 0) {
    compact_revision_ = msg->compact_revision;
    return Fail(ErrorCode::kCompacted,
                "etcd watch of '" + prefix_ + "' from revision " + std::to_string(next_revision_) +
                    ": history compacted up to revision " + std::to_string(msg->compact_revision));
  }
  if (msg->canceled) {
    return Fail(ErrorCode::kUnavailable,
                "etcd cancelled the watch of '" + prefix_ + "': " + msg->cancel_reason);
  }
  if (msg->created && next_revision_ == 0) next_revision_ = msg->header_revision + 1;
  Revision highest = 0;
  for (auto& ev : msg->events) {
    if (ev.kv.mod_revision < next_revision_) continue;  // delivered before a reconnect
    highest = std::max(highest, ev.kv.mod_revision);
    ready_.push_back(std::move(ev));
  }
  if (highest > 0) next_revision_ = highest + 1;
  return Ok();
}

WatchBatch EtcdWatch::TakeReady() {
  WatchBatch batch;
  batch.events = std::move(ready_);
  ready_.clear();
  batch.revision = header_revision_;
  if (!batch.events.empty()) {
    batch.revision = std::max(batch.revision, batch.events.back().kv.mod_revision);
  }
  return batch;
}

Result<WatchBatch> EtcdWatch::Next(Duration timeout) {
  const SteadyTime deadline = SteadyClock::now() + std::max(timeout, Duration::zero());
  if (cancelled_) return Fail(ErrorCode::kCancelled, "watch of '" + prefix_ + "' was cancelled");
  std::optional<Error> last_error;
  for (int round = 0; round < 100000; ++round) {
    if (!ready_.empty()) return TakeReady();
    if (corrupt_) {
      Error e = std::move(*corrupt_);
      corrupt_.reset();
      return Fail(std::move(e));
    }
    if (compacted_) {
      Error e = std::move(*compacted_);
      compacted_.reset();
      return Fail(std::move(e));
    }
    if (cancelled_) return Fail(ErrorCode::kCancelled, "watch of '" + prefix_ + "' was cancelled");
    if (SteadyClock::now() >= deadline) break;
    if (!stream_.is_open()) {
      const SteadyTime now = SteadyClock::now();
      if (now < retry_at_) {
        std::this_thread::sleep_for(std::min(retry_at_, deadline) - now);
        continue;
      }
      auto opened = OpenStream(deadline);
      if (!opened) {
        if (opened.error().code == ErrorCode::kCancelled) continue;
        last_error = opened.error();
      }
      continue;
    }
    auto got = Pump(deadline);
    if (!got) {
      switch (got.error().code) {
        case ErrorCode::kCompacted:
        case ErrorCode::kCancelled:
          continue;  // reported above
        case ErrorCode::kCorrupt:
          return Fail(got.error());
        default:
          last_error = got.error();
          continue;  // reconnect
      }
    }
    if (!*got) break;  // nothing in time
  }
  if (!ready_.empty()) return TakeReady();
  if (!stream_.is_open() && last_error) {
    return Fail(ErrorCode::kUnavailable,
                "etcd watch of '" + prefix_ + "' is disconnected: " + last_error->message);
  }
  WatchBatch empty;
  empty.revision = header_revision_;
  return empty;
}

}  // namespace pgwarden::dcs::etcd3

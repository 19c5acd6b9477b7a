// The simulated devices of one bench shard. Each Device is one IMAP connection
// on a direct descriptor of the shard's ring: connect (optionally from a chosen
// source address), greeting, LOGIN (user#devN through the gateway, plain user
// straight to the store), SELECT INBOX, then IDLE (idle, push) or a
// FETCH/STORE/SEARCH loop (relay). Over the HTTP binding (--binding http|https)
// the same commands travel as POST batches (http_client.h): no greeting, LOGIN
// + SELECT in one batch, IDLE as a long poll, DONE on a second connection.
// Everything here runs on the owning shard's thread; the main thread only reads
// the atomic counters while the shards run, and the rest after they have been
// joined.
#ifndef PIMAP_BENCH_LOADGEN_FLEET_H_
#define PIMAP_BENCH_LOADGEN_FLEET_H_

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "bench/loadgen/connect.h"
#include "bench/loadgen/http_client.h"
#include "bench/loadgen/options.h"
#include "bench/loadgen/resume.h"
#include "bench/loadgen/tls_client.h"
#include "core/base/timer_wheel.h"
#include "core/engine/shard.h"
#include "core/engine/socket.h"
#include "core/imap/framer.h"

namespace pimap::bench {

// What a phase (one target: the gateway, or the store directly) runs.
struct PhaseConfig {
  std::string name;          // "pimap" | "direct"
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  bool device_logins = true;  // LOGIN user#devN (else plain user)
  bool idle = true;           // IDLE after SELECT (idle, push); else relay
  bool resume = false;        // resume scenario: model FETCH, park, reconnect
  std::string binding = "tcp";  // tcp | tls | http | https
  // --binding tls|https: every connection is wrapped in client TLS (implicit
  // TLS port).
  std::shared_ptr<TlsClientContext> tls;
  // --binding http|https: the devices speak P-IMAP's HTTP binding.
  bool http = false;
  HttpTarget http_target;
  bool compress = false;  // COMPRESS DEFLATE after LOGIN (RFC 4978)
  // Processes whose memory/CPU count as "the gateway" in this phase (pimapd; nginx's
  // master, its workers summed); empty for the direct phase.
  std::vector<int> gateway_pids;
  bool gateway_tree = false;  // sum the roots' descendants too (nginx workers)
  std::string target_text;    // HOST:PORT, for the JSON and the summary
};

// Shared by all shards of a phase.
struct FleetShared {
  explicit FleetShared(int users) : ready_per_user(new std::atomic<int>[users]) {
    for (int i = 0; i < users; ++i) ready_per_user[i].store(0);
  }
  std::atomic<uint64_t> next_source{0};
  std::unique_ptr<std::atomic<int>[]> ready_per_user;  // devices in IDLE per user
};

struct FleetCounters {
  std::atomic<int64_t> launched{0};
  std::atomic<int64_t> connected{0};
  std::atomic<int64_t> ready{0};        // in IDLE (or ready for relay)
  std::atomic<int64_t> setup_failed{0};
  std::atomic<int64_t> lost{0};         // dropped after being ready
  std::atomic<int64_t> notified{0};     // new messages seen via EXISTS (device x message)
  std::atomic<int64_t> relay_done{0};
  std::atomic<int64_t> relay_failed{0};
  std::atomic<int64_t> relay_busy{0};
  std::atomic<int64_t> resume_launched{0};
  std::atomic<int64_t> resumed{0};        // synchronised again after the reconnect
  std::atomic<int64_t> resume_failed{0};
  std::atomic<int64_t> resume_finished{0};  // after the verification NOOP / LOGOUT too
  std::atomic<int64_t> logout_sent{0};
  std::atomic<int64_t> logout_done{0};
  std::atomic<int> logout_posted{0};   // 1 once LogoutAll ran on the shard
};

class Fleet;

class Device final : public engine::TransportHandler,
                     public imap::Framer::Visitor,
                     public ConnectClient {
 public:
  enum class State : uint8_t {
    kNew, kConnecting, kGreeting, kLogin, kCompress, kSelect, kIdleStart, kIdle,
    kRelayReady, kRelayBusy, kRelayThink, kDone, kFailed,
    // resume scenario
    kModelFetch, kModelReady, kParked, kResumeConnecting, kResumeGreeting, kResumeLogin,
    kResumeSelect, kResumeFetch, kResumeNoop, kResumeLogout, kResumed,
    kLogout,  // end of phase: DONE (if in IDLE) + LOGOUT, so P-IMAP sessions end too
    // end of an idle phase: DONE + "UID FETCH 1:* (FLAGS)", timed (the wake-up of an
    // idle client: for a parked stock client, the unpark), then LOGOUT
    kWakeProbe,
  };
  Device(Fleet* fleet, int index, int user);
  ~Device() override;

  void Start();
  // ConnectClient
  void OnConnected(engine::Socket* socket) override;
  void OnConnectFailed(int err, const char* what) override;
  void BeginRelay();
  void Close();
  // resume scenario (shard thread)
  void Park();
  void StartResume();
  bool Logout();  // true if a LOGOUT was sent (the fleet counts it until answered)

  // engine::TransportHandler
  void OnTransportData(absl::string_view data) override;
  void OnTransportClosed(absl::Status reason) override;
  // imap::Framer::Visitor
  bool OnLine(absl::string_view line, const imap::LiteralHeader* literal) override;
  bool OnLiteralData(absl::string_view) override { return true; }
  bool OnEnd() override { return true; }
  bool OnError(const imap::FrameError& error) override;

  // Results, read after the shards have stopped.
  int index() const { return index_; }
  int user() const { return user_; }
  bool was_ready() const { return ready_at_us_ != 0; }
  uint32_t base_exists() const { return base_exists_; }
  const std::vector<std::pair<uint32_t, int64_t>>& exists_events() const { return events_; }
  // resume results
  struct ResumeStats {
    bool parked = false;
    bool synced = false;       // model synchronised again after the reconnect
    bool finished = false;     // NOOP (late events) and LOGOUT done too
    bool session_selected = false;
    bool resync = false;
    int model_refetches = 0;   // model FETCH repeated for messages an EXISTS
                               // announced after the first FETCH's data
    std::string folder;
    int64_t start_us = 0, login_us = 0, synced_us = 0;
    int64_t bytes = 0;         // received from connect to synchronised
    int64_t resync_fetch_bytes = 0;
    int new_signalled = 0, fetches = 0, expunges = 0, late_events = 0;
    uint32_t pre_max_uid = 0;
    size_t pre_count = 0;
    std::string model_error;   // first inconsistency while applying events
  };
  const ResumeStats& resume() const { return rs_; }
  const std::vector<ModelMsg>& model() const { return model_; }

 private:
  void Send(std::string cmd);
  void SendLogin();  // after the greeting (at once over HTTP)
  void Fail(const std::string& kind, const std::string& detail);
  void BecomeReady();
  void NextRelayCommand();
  void OnTagged(absl::string_view status, absl::string_view rest);
  void OnResumeTagged(bool ok, absl::string_view status, absl::string_view rest);
  void ApplyUntagged(absl::string_view line);
  void ModelError(const std::string& what);
  void Synced();
  void SendCmd(const std::string& cmd);
  bool resume_state() const { return state_ >= State::kModelFetch; }

  Fleet* fleet_;
  engine::Transport* socket_ = nullptr;  // the socket, or TLS over it
  imap::Framer framer_;
  State state_ = State::kNew;
  int index_;
  int user_;
  uint32_t tag_seq_ = 0;
  std::string tag_;
  uint32_t base_exists_ = 0;
  uint32_t last_exists_ = 0;
  int64_t started_us_ = 0;
  int64_t ready_at_us_ = 0;
  int64_t cmd_sent_us_ = 0;
  int cmd_kind_ = 0;
  bool flag_toggle_ = false;
  TimerWheel::TimerId timer_ = 0;
  int64_t wake_start_us_ = 0;  // kWakeProbe: when DONE went out
  std::vector<std::pair<uint32_t, int64_t>> events_;
  std::vector<ModelMsg> model_;
  ResumeStats rs_;
  bool counting_bytes_ = false;
  bool select_batched_ = false;  // HTTP: SELECT went in the LOGIN's batch
  // COMPRESS's OK was read: the rest of the input, and all after it, is
  // compressed (OnTransportData switches the transport).
  bool compress_switch_ = false;
};

class Fleet final : public HttpDialer {
 public:
  Fleet(engine::Shard* shard, const Options& options, const PhaseConfig& config,
        FleetShared* shared, std::vector<int> device_indexes, int max_inflight,
        double connect_rate);
  ~Fleet();

  // Shard thread.
  void StartRamp();
  void StartRelay(double think_ms);
  void StopRelay() { relay_stopping_ = true; }
  void CloseAll();
  void ParkAll();
  void LogoutAll();
  void StartResume();

  engine::Shard* shard() { return shard_; }
  const Options& options() const { return options_; }
  const PhaseConfig& config() const { return config_; }
  FleetCounters& counters() { return counters_; }
  FleetShared* shared() { return shared_; }
  bool closing() const { return closing_; }
  bool relay_running() const { return relay_running_ && !relay_stopping_; }
  double think_ms() const { return think_ms_; }
  std::mt19937_64& rng() { return rng_; }

  // Called by devices.
  void SetupFinished(Device* d, bool ok, int64_t setup_us);
  void RecordError(const std::string& kind, const std::string& detail);
  void RecordRelay(int kind, int64_t us, bool ok);
  void Connect(ConnectClient* c);
  // HttpDialer: the HTTP binding's second connection of a device.
  void Dial(ConnectClient* c) override { Connect(c); }
  // The socket as the phase's binding carries it: TLS over it, or itself.
  engine::Transport* Wrap(engine::Socket* socket) override;
  void ResumeFinished(Device* d, bool ok);  // synchronised (or failed)
  void ResumeDone();                        // after the verification steps
  void LogoutDone() { counters_.logout_done.fetch_add(1, std::memory_order_relaxed); }

  // Results (after join).
  std::map<std::string, int64_t> errors() const;
  std::map<std::string, std::string> error_examples() const;
  std::vector<std::unique_ptr<Device>>& devices() { return devices_; }
  std::vector<int64_t>& setup_us() { return setup_us_; }
  std::vector<int64_t>& relay_us() { return relay_us_; }
  // DONE + FETCH round trips at the end of an idle hold (Device::Logout).
  std::vector<int64_t>& wake_us() { return wake_us_; }
  void WakeFinished(int64_t us) { wake_us_.push_back(us); }
  static constexpr int kRelayKinds = 4;
  std::array<int64_t, kRelayKinds> relay_count{};
  std::array<int64_t, kRelayKinds> relay_sum_us{};

 private:
  void Pump();
  void ResumePump();
  bool resuming_ = false;

  engine::Shard* shard_;
  const Options& options_;
  PhaseConfig config_;
  FleetShared* shared_;
  FleetCounters counters_;
  std::vector<std::unique_ptr<Device>> devices_;
  size_t next_launch_ = 0;
  int inflight_ = 0;
  int max_inflight_;
  double connect_rate_;
  int64_t ramp_start_us_ = 0;
  TimerWheel::TimerId pump_timer_ = 0;
  bool closing_ = false;
  bool relay_running_ = false;
  bool relay_stopping_ = false;
  double think_ms_ = 0;
  std::mt19937_64 rng_;
  std::vector<int64_t> setup_us_;
  std::vector<int64_t> relay_us_;
  std::vector<int64_t> wake_us_;
  mutable std::mutex errors_mu_;
  std::map<std::string, int64_t> errors_;
  std::map<std::string, std::string> error_examples_;
};

const char* RelayKindName(int kind);

}  // namespace pimap::bench

#endif  // PIMAP_BENCH_LOADGEN_FLEET_H_

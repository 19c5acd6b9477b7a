// Test doubles around the session engine (core/session/device_driver.h): a
// store link that records what the driver sends and plays the store's answers
// back, a device output that records what the device would read, and a store
// watch factory that records the watches the registry opens.
#ifndef PIMAP_TESTS_CORE_SESSION_FAKE_STORE_LINK_H_
#define PIMAP_TESTS_CORE_SESSION_FAKE_STORE_LINK_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "core/session/device_driver.h"
#include "core/session/store_link.h"
#include "core/session/store_watch.h"

namespace pimap::session::testing {

// A logged-in store connection. Send() appends to sent(); Reply/Complete
// deliver one whole store response to the client the driver set, the way
// store/upstream_link.cc does: the line without its CRLF, then "\r\n" in a
// second call, then the end of the response with the tag only for a tagged
// completion. With `whole_lines` the line and its CRLF come in one call
// instead (which store_link.h allows as well). Close(), like the real link's,
// detaches the client: nothing is delivered after it.
class FakeStoreLink final : public StoreLink {
 public:
  static std::vector<std::string> DefaultCapabilities() {
    return {"IMAP4REV1", "QRESYNC", "CONDSTORE", "UIDPLUS",
            "LITERAL+",  "ENABLE",  "IDLE"};
  }

  explicit FakeStoreLink(std::vector<std::string> caps = DefaultCapabilities())
      : caps_(std::move(caps)) {}

  // StoreLink
  void SetClient(StoreLinkClient* client) override { client_ = client; }
  void Send(absl::string_view bytes) override {
    sent_.append(bytes.data(), bytes.size());
    for (absl::string_view line :
         absl::StrSplit(bytes, "\r\n", absl::SkipEmpty())) {
      if (line == "DONE") continue;  // IDLE's end carries no tag
      last_tag_ = std::string(line.substr(0, line.find(' ')));
    }
  }
  size_t PendingOutput() const override { return 0; }
  void SetReading(bool on) override { reading_ = on; }
  const std::vector<std::string>& capabilities() const override {
    return caps_;
  }
  void Close() override {
    ++close_calls_;
    client_ = nullptr;
  }

  // Test side.
  StoreLinkClient* client() const { return client_; }
  const std::string& sent() const { return sent_; }
  // What was sent since the last call.
  std::string TakeSent() { return std::exchange(sent_, std::string()); }
  // The tag of the last tagged line sent ("~p3", or a device tag for LOGOUT).
  const std::string& last_tag() const { return last_tag_; }
  bool closed() const { return close_calls_ > 0; }
  int close_calls() const { return close_calls_; }
  bool reading() const { return reading_; }

  // An untagged response or a continuation request ("* 3 EXISTS", "+ idling").
  void Reply(absl::string_view line) { Deliver(line, ""); }
  // A tagged completion of `tag`.
  void Complete(absl::string_view tag, absl::string_view rest) {
    Deliver(absl::StrCat(tag, " ", rest), tag);
  }
  // One response in pieces as the real link delivers a response with
  // literals: each piece is one OnStoreBytes call, then the end.
  void ReplyPieces(const std::vector<std::string>& pieces,
                   absl::string_view completed_tag = "") {
    if (client_ == nullptr) {
      ++undelivered_;
      return;
    }
    for (const std::string& piece : pieces) {
      if (client_ != nullptr) client_->OnStoreBytes(piece);
    }
    if (client_ != nullptr) client_->OnStoreResponseEnd(completed_tag);
  }
  // A tagged completion of the last command sent ("OK done").
  void CompleteLast(absl::string_view rest) { Complete(last_tag_, rest); }
  // The connection to the store is lost.
  void Lose(absl::Status reason) {
    StoreLinkClient* client = std::exchange(client_, nullptr);
    if (client != nullptr) client->OnStoreClosed(std::move(reason));
  }
  // Responses that could not be delivered (the link was closed).
  int undelivered() const { return undelivered_; }

  bool whole_lines = false;

 private:
  void Deliver(absl::string_view line, absl::string_view completed_tag) {
    if (client_ == nullptr) {
      ++undelivered_;
      return;
    }
    if (whole_lines) {
      client_->OnStoreBytes(absl::StrCat(line, "\r\n"));
    } else {
      client_->OnStoreBytes(line);
      // The client may close the link from inside the first call.
      if (client_ != nullptr) client_->OnStoreBytes("\r\n");
    }
    if (client_ != nullptr) client_->OnStoreResponseEnd(completed_tag);
  }

  std::vector<std::string> caps_;
  StoreLinkClient* client_ = nullptr;
  int undelivered_ = 0;
  std::string sent_;
  std::string last_tag_;
  int close_calls_ = 0;
  bool reading_ = true;
};

// The binding's side: everything the device would read, in order, in one
// transcript, plus the control calls.
class FakeDeviceOutput final : public DeviceOutput {
 public:
  void WriteResponse(std::string bytes) override { transcript_ += bytes; }
  bool WritePassThrough(absl::string_view bytes) override {
    transcript_.append(bytes.data(), bytes.size());
    ++pass_through_writes;
    return !above_high_water;
  }
  void EndPassThrough() override { ++pass_through_ends; }
  void SetCommandRunning(bool running, bool resume) override {
    running_calls.emplace_back(running, resume);
    command_running = running;
  }
  void LoginDone(bool ok) override { login_done.push_back(ok); }
  void RelayedDone(absl::string_view tag) override {
    relayed_done.emplace_back(tag);
  }
  void RelayDrained() override { ++relay_drained; }
  void EndSession(absl::string_view reason) override {
    end_session.emplace_back(reason);
    if (on_end_session) on_end_session();
  }
  void Close() override { ++closes; }

  const std::string& transcript() const { return transcript_; }
  // What the device got since the last call.
  std::string Take() { return std::exchange(transcript_, std::string()); }

  // What the binding does on EndSession (bindings/tcp closes the connection
  // at once, which detaches the driver).
  std::function<void()> on_end_session;
  bool above_high_water = false;
  int pass_through_writes = 0;
  int pass_through_ends = 0;
  bool command_running = false;
  std::vector<std::pair<bool, bool>> running_calls;
  std::vector<bool> login_done;
  std::vector<std::string> relayed_done;
  int relay_drained = 0;
  std::vector<std::string> end_session;
  int closes = 0;

 private:
  std::string transcript_;
};

class FakeStoreWatch final : public StoreWatch {
 public:
  void Close() override { closed = true; }
  uint64_t highest_modseq(absl::string_view) const override { return modseq; }
  uint32_t uidvalidity(absl::string_view) const override {
    return uidvalidity_value;
  }

  bool closed = false;
  uint64_t modseq = 0;
  uint32_t uidvalidity_value = 0;
};

// Records every Watch() call; the watches it hands out stay owned here (the
// registry only closes them), so a test can look at them after Close().
class FakeWatchFactory final : public StoreWatchFactory {
 public:
  struct Call {
    std::string user;
    StoreCredentials credentials;
    StoreEventSink* sink;
  };

  StoreWatch* Watch(const std::string& user, StoreCredentials credentials,
                    StoreEventSink* sink) override {
    calls.push_back({user, std::move(credentials), sink});
    watches.push_back(std::make_unique<FakeStoreWatch>());
    return watches.back().get();
  }

  std::vector<Call> calls;
  std::vector<std::unique_ptr<FakeStoreWatch>> watches;
};

}  // namespace pimap::session::testing

#endif  // PIMAP_TESTS_CORE_SESSION_FAKE_STORE_LINK_H_

// What the P-IMAP session engine (DeviceDriver) knows about the store command
// it runs: the kind of job (DeviceJob: what its responses mean and what to do
// when it completes) and the per-command scratch (CommandState) — the running
// job's parameters, answers held back, the store response being read, a job
// waiting for a pooled link.
//
// Hazard: an idle device holds no CommandState. The driver allocates it on
// first use and frees it when at rest (DeviceDriver::MaybeDropCommandState,
// Settled() below), so every job sets the running-command fields it reads
// before it reads them, and anything that must outlive a command (the IDLE's
// state, the device's tag of an IDLE the gateway answers) is the driver's.
#ifndef PIMAP_CORE_SESSION_COMMAND_STATE_H_
#define PIMAP_CORE_SESSION_COMMAND_STATE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/session/filtered_status.h"
#include "core/session/xconvert.h"
#include "core/session/xdeliver_run.h"

namespace pimap::session {

// What the running store command's responses mean and what to do when it
// completes. One store command runs at a time per device.
enum class DeviceJob {
  kNone,
  kEnable,
  kResumeSelect,
  kViewSearch,
  kRebuild,
  kRebuildNew,
  kSelect,
  kSelectSearch,
  kMessages,
  kSearch,
  kExpunge,
  kIdle,
  kPlain,
  kEvalSync,
  kEvalView,
  kEvalNotify,
  kNewFetch,
  kOwnNew,
  // UID FETCH FLAGS of the messages whose pushed flag change did not carry
  // the whole list (StoreEvent::resolve).
  kFlagsFetch,
  kStatus,
  kCloseExpunge,
  // A pooled link being borrowed and brought to the session's
  // state before the job that needs it (device_driver_links.cc).
  kAcquire,
  kLinkEnable,
  kLinkSelect,
  kLinkSync,
  // STATUS of a folder under a view filter: the view's counts.
  kStatusExamine,
  kStatusCount,
  kStatusUnseen,
  // XDELIVER (device_driver_xdeliver.cc): the original's UID FETCH
  // BODY.PEEK[], the SMTP submission (no store command runs meanwhile), the
  // SAVETO copy's APPEND, \Answered or $Forwarded on the original.
  kXdeliverFetch,
  kXdeliverSubmit,
  kXdeliverAppend,
  kXdeliverFlag,
  // XCONVERT: the part's FETCH, then the conversion (device_driver_convert.cc).
  kConvert
};

// Store commands the gateway runs on its own between two IDLEs or before a
// command's answer, or to bring a borrowed link to the session's state; news
// the store sends meanwhile still belong to the device (in a folder no event
// source covers they are its only news).
bool IsMaintenanceJob(DeviceJob job);

// What becomes of a store response of the running job.
enum class RespAction { kForward, kDrop, kCollect };

// A job waiting for a pooled link (kAcquire and the kLink* steps run first).
struct QueuedJob {
  DeviceJob job = DeviceJob::kNone;
  std::string device_tag;
  std::string command;
};

// What running a command needs (see the hazard above).
struct CommandState {
  // The running store command (reset at rest: each job sets what it reads).
  std::string job_up_tag;
  bool job_uid_mode = false;
  bool job_sort = false;         // the search job is a SORT (order matters)
  bool job_may_expunge = false;  // the device's command itself expunges
  std::string job_folder;
  std::string job_vfolder;  // a SELECT of a virtual folder (vfolder.h)
  // LIST/LSUB lines of matching virtual folders, written before the store's
  // tagged OK (device_driver_xpsearch.cc).
  std::string vfolder_lines;
  bool job_examine = false;
  uint64_t job_modseq = 0;       // HIGHESTMODSEQ reported while selecting
  uint64_t flags_fetch_seq = 0;  // journal position when kFlagsFetch went
  uint64_t snapshot_seq = 0;  // journal position when the store took a snapshot
  std::vector<uint32_t> search_uids;
  std::string search_modseq;  // a SEARCH's "(MODSEQ n)", kept for the device
  // STATUS of a folder under a view filter (the view's MESSAGES and
  // UNSEEN): set while its steps run (device_driver_status.cc).
  std::optional<FilteredStatus> status;
  // The XCONVERT being run (fetch, then conversion).
  std::optional<XConvertRequest> convert;
  std::string prep_folder;   // the folder a kLinkSelect selects
  std::string close_folder;  // the folder a CLOSE acts on
  // New mail just announced (EXISTS): scratch of one render, cleared before
  // it.
  std::vector<uint32_t> rendered_new;
  bool closing = false;  // the running kPlain job is that CLOSE
  // Pending work: the state is kept while any of these is set.
  std::optional<QueuedJob> queued;
  std::string held_tagged;  // a tagged store line held until the job ends
  std::string held_finish;  // the tagged answer waiting for verdicts
  DeviceJob held_job = DeviceJob::kNone;
  bool finish_after_eval = false;
  bool fetch_then_finish = false;  // a command's answer waits for new-mail
                                   // FETCH
  // New mail pushed in IDLE with PIMAP_INBAND_NEW_FORMAT: its EXISTS (and
  // whatever was rendered with it) and then the FETCH responses of the
  // kNewFetch job, written as one burst of events when the job ends, so a
  // device with XZSTDEVENTS gets them in one frame (event_frames.h).
  // `held_events`: complete lines only; `pushed_fetch`: may end inside a
  // response until the job is done.
  std::string held_events;
  std::string pushed_fetch;
  bool pushed_fetch_plain = false;  // too large to hold: passed through
  // The response being read from the store.
  RespAction resp_action = RespAction::kForward;
  bool resp_first = true;
  bool passing = false;  // a response is being passed through
  std::string collected;
  std::vector<uint32_t> eval_uids;
  std::string rebuild_output;  // an exact rebuild's responses, for the resume
  std::string relay_buffer;    // verbatim bytes while a link is being borrowed
  std::unique_ptr<XdeliverRun> xdeliver;  // an XDELIVER runs

  // Nothing pending: only the running-command fields may hold values.
  bool Settled() const;
  // The device's command has been answered: the job's mode and tag go (the
  // next job sets its own).
  void EndJob();
  // The running command ends with no answer from the store (its link is
  // lost): everything it held or collected goes. Returns whether a response
  // was being passed through (the caller ends it on the device's side).
  bool Abort();
};

}  // namespace pimap::session

#endif  // PIMAP_CORE_SESSION_COMMAND_STATE_H_

// Where an agent finds the statement a task names by digest
// (Task.statement_digest): the statement of a decision travels once — per
// stream (ControlMessage.statement), per bundle (TaskBundle.statements) —
// not inside each of its tasks. A source is only a lookup: the task check
// (task_checks.h) accepts bytes only if their SHA-256 is the digest the
// dispatch-signed task names.
#pragma once

#include <cstddef>
#include <list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace wb::agent {

class StatementSource {
 public:
  virtual ~StatementSource() = default;
  // The statement whose SHA-256 is `digest` (raw 32 bytes), or null.
  virtual std::shared_ptr<const std::string> FindStatement(absl::string_view digest) const = 0;
};

// The statements received on the stream, most recently used kept. The
// control plane remembers fewer (kStreamStatementsRemembered on its side)
// and sends a statement again once it has forgotten it, so a task never
// names a statement this cache has dropped. Thread-safe.
class StatementCache final : public StatementSource {
 public:
  static constexpr size_t kDefaultMaxEntries = 1024;
  static constexpr size_t kDefaultMaxBytes = size_t{256} << 20;

  explicit StatementCache(size_t max_entries = kDefaultMaxEntries,
                          size_t max_bytes = kDefaultMaxBytes);

  // Keeps `bytes` under their SHA-256 (returned). Empty bytes are ignored
  // (returns "").
  std::string Put(std::string bytes);
  std::shared_ptr<const std::string> FindStatement(absl::string_view digest) const override;
  size_t size() const;

 private:
  struct Entry {
    std::shared_ptr<const std::string> bytes;
    std::list<std::string>::iterator lru;  // position in lru_
  };
  void EvictLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const size_t max_entries_;
  const size_t max_bytes_;
  mutable absl::Mutex mu_;
  mutable std::list<std::string> lru_ ABSL_GUARDED_BY(mu_);  // front = most recent
  absl::flat_hash_map<std::string, Entry> by_digest_ ABSL_GUARDED_BY(mu_);
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

// A fixed set (a bundle's statements). Not thread-safe to build; safe to
// read concurrently once built.
class StatementSet final : public StatementSource {
 public:
  void Add(std::string bytes);
  std::shared_ptr<const std::string> FindStatement(absl::string_view digest) const override;

 private:
  absl::flat_hash_map<std::string, std::shared_ptr<const std::string>> by_digest_;
};

// The first source that knows the digest (e.g. the stream's cache, then the
// journal). Null sources are skipped.
class StatementSources final : public StatementSource {
 public:
  explicit StatementSources(std::vector<const StatementSource*> sources)
      : sources_(std::move(sources)) {}
  std::shared_ptr<const std::string> FindStatement(absl::string_view digest) const override;

 private:
  std::vector<const StatementSource*> sources_;
};

}  // namespace wb::agent

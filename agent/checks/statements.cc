#include "agent/checks/statements.h"

#include "common/trust/approvals.h"

namespace wb::agent {

StatementCache::StatementCache(size_t max_entries, size_t max_bytes)
    : max_entries_(max_entries == 0 ? 1 : max_entries), max_bytes_(max_bytes) {}

std::string StatementCache::Put(std::string bytes) {
  if (bytes.empty()) return "";
  std::string digest = trust::StatementDigest(bytes);
  absl::MutexLock l(&mu_);
  auto it = by_digest_.find(digest);
  if (it != by_digest_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    return digest;
  }
  lru_.push_front(digest);
  bytes_ += bytes.size();
  by_digest_.emplace(digest,
                     Entry{std::make_shared<const std::string>(std::move(bytes)), lru_.begin()});
  EvictLocked();
  return digest;
}

void StatementCache::EvictLocked() {
  // The newest entry always stays, even over the byte bound.
  while (by_digest_.size() > 1 && (by_digest_.size() > max_entries_ || bytes_ > max_bytes_)) {
    auto it = by_digest_.find(lru_.back());
    bytes_ -= it->second.bytes->size();
    by_digest_.erase(it);
    lru_.pop_back();
  }
}

std::shared_ptr<const std::string> StatementCache::FindStatement(absl::string_view digest) const {
  absl::MutexLock l(&mu_);
  auto it = by_digest_.find(digest);
  if (it == by_digest_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  return it->second.bytes;
}

size_t StatementCache::size() const {
  absl::MutexLock l(&mu_);
  return by_digest_.size();
}

void StatementSet::Add(std::string bytes) {
  if (bytes.empty()) return;
  std::string digest = trust::StatementDigest(bytes);
  by_digest_.emplace(std::move(digest), std::make_shared<const std::string>(std::move(bytes)));
}

std::shared_ptr<const std::string> StatementSet::FindStatement(absl::string_view digest) const {
  auto it = by_digest_.find(digest);
  return it == by_digest_.end() ? nullptr : it->second;
}

std::shared_ptr<const std::string> StatementSources::FindStatement(absl::string_view digest) const {
  for (const StatementSource* s : sources_) {
    if (s == nullptr) continue;
    if (auto found = s->FindStatement(digest); found != nullptr) return found;
  }
  return nullptr;
}

}  // namespace wb::agent

#ifndef GATEHOUSE_CONCURRENCY_HOOK_H
#define GATEHOUSE_CONCURRENCY_HOOK_H
#include <stdbool.h>

/// Sets the Swift runtime's global enqueue hook to `hook` if no hook is set yet; true when set.
/// The hook is reached by symbol at link time, not with dlsym: a binary that links the Swift
/// runtime statically does not export it (its linker flags hide every archive symbol).
bool gatehouse_install_enqueue_global_hook(void *hook);

#endif

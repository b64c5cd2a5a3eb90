#include "concurrency_hook.h"

// Defined by the Swift concurrency runtime (swift/Runtime/Concurrency.h): the hook Swift calls,
// when set, instead of its own global executor.
extern void *swift_task_enqueueGlobal_hook;

bool gatehouse_install_enqueue_global_hook(void *hook) {
    void *expected = 0;
    return __atomic_compare_exchange_n(&swift_task_enqueueGlobal_hook, &expected, hook, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

// One processor for the Go runtime, chosen before it starts.
//
// The Go runtime sizes its scheduler from GOMAXPROCS (or the CPU count)
// before main runs, and starts threads for every processor it has. A
// runtime command's work is sequential, and each extra processor costs
// threads, stacks and partly used heap spans (~100-250 KB of peak RSS).
// This constructor runs before the Go runtime: unless the caller set
// GOMAXPROCS, it sets it to 1 and leaves a marker, so that main removes
// both again and nothing the runtime starts (hooks, ps) inherits them.
#include <stdlib.h>

__attribute__((constructor)) static void berth_one_processor(void)
{
	if (getenv("GOMAXPROCS") != NULL)
		return;
	if (setenv("GOMAXPROCS", "1", 1) == 0)
		setenv("_BERTH_GOMAXPROCS", "1", 1);
}

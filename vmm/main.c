// SPDX-License-Identifier: MIT
/*
 * tinyvmm: boot a Linux kernel under KVM with a serial console and
 * virtio block devices.  main() only parses options and runs the VM; the
 * init order lives in vm_create().
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "lib/util.h"
#include "vmm/console.h"
#include "vmm/host.h"
#include "vmm/kvm.h"
#include "vmm/options.h"
#include "vmm/seccomp.h"
#include "vmm/vm.h"

int main(int argc, char **argv)
{
	uint64_t t_main = vm_now_ns();
	struct options opt;
	struct vm vm;
	int status;

	status = options_parse(&opt, argc, argv);
	if (status) {
		options_free(&opt);
		return status;
	}
	if (opt.help) {
		options_usage(stdout);
		options_free(&opt);
		return 0;
	}
	if (opt.print_host_kind) {
		/* A kvm_pvm module that refused to bind leaves no device. */
		printf("%s\n", access(kvm_device_path(), R_OK | W_OK) ? "none" :
		       host_kind_word(host_detect("")));
		options_free(&opt);
		return 0;
	}
	if (opt.version) {
		printf("tinyvmm %s\n", TINYVMM_VERSION);
		options_free(&opt);
		return 0;
	}

	/* A console reader that went away must not kill the VM. */
	signal(SIGPIPE, SIG_IGN);
	vm_block_signals();

	status = vm_create(&vm, &opt, t_main);
	/*
	 * Everything is open and created and the device threads run; the
	 * vCPUs start in vm_run().  The filter covers all threads (TSYNC).
	 */
	if (!status && opt.seccomp &&
	    vmm_seccomp_install(vm_seccomp_flags(&vm), console_restore))
		status = EXIT_SETUP_ERROR;
	if (!status) {
		status = vm_run(&vm);
		if (opt.stats)
			vm_print_stats(&vm);
	}
	/*
	 * A disk that may be missing completed writes (a failed final flush)
	 * turns any ending, a signal or the guest's own, into an error.
	 */
	if (vm_destroy(&vm))
		status = EXIT_SETUP_ERROR;
	options_free(&opt);
	return status;
}

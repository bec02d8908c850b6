// SPDX-License-Identifier: MIT
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/host.h"

/* A fake root with /proc/cpuinfo and /sys/module/<modules>. */
static char *make_root(const char *flags, const char *const *modules)
{
	char tmpl[] = "/tmp/tinyvmm-host-XXXXXX";
	char path[512];
	char *root = strdup(mkdtemp(tmpl));
	FILE *f;

	snprintf(path, sizeof(path), "%s/proc", root);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/sys", root);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/sys/module", root);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/proc/cpuinfo", root);
	f = fopen(path, "w");
	fprintf(f, "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: %s\n\n", flags);
	fclose(f);
	for (; modules && *modules; modules++) {
		snprintf(path, sizeof(path), "%s/sys/module/%s", root, *modules);
		mkdir(path, 0755);
	}
	return root;
}

static void rm_root(char *root)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	assert_int_equal(system(cmd), 0);
	free(root);
}

static void test_detect_pvm(void **state)
{
	const char *mods[] = { "kvm", "kvm_pvm", NULL };
	char *root = make_root("fpu vme de pse tsc msr pae hypervisor", mods);

	assert_int_equal(host_detect(root), HOST_PVM);
	rm_root(root);
}

static void test_detect_vmx(void **state)
{
	const char *mods[] = { "kvm", "kvm_intel", NULL };
	char *root = make_root("fpu vme vmx ept", mods);

	assert_int_equal(host_detect(root), HOST_VMX);
	rm_root(root);
}

static void test_detect_svm_beats_pvm(void **state)
{
	const char *mods[] = { "kvm", "kvm_amd", "kvm_pvm", NULL };
	char *root = make_root("fpu svm npt", mods);

	assert_int_equal(host_detect(root), HOST_SVM);
	rm_root(root);
}

static void test_detect_flag_is_whole_word(void **state)
{
	const char *mods[] = { "kvm", NULL };
	/* "vmx_foo" and "svmx" must not count as vmx/svm. */
	char *root = make_root("fpu vmx_foo svmx", mods);

	assert_int_equal(host_detect(root), HOST_UNKNOWN);
	rm_root(root);
}

static void test_cmdline_compose(void **state)
{
	char buf[1024], small[16];

	assert_int_equal(host_cmdline_compose(buf, sizeof(buf), "console=ttyS0", HOST_PVM, true), 1);
	assert_string_equal(buf, "console=ttyS0 " PVM_GUEST_CMDLINE);
	assert_int_equal(host_cmdline_compose(buf, sizeof(buf), "console=ttyS0", HOST_PVM, false), 0);
	assert_string_equal(buf, "console=ttyS0");
	assert_int_equal(host_cmdline_compose(buf, sizeof(buf), "console=ttyS0", HOST_VMX, true), 0);
	assert_string_equal(buf, "console=ttyS0");
	assert_int_equal(host_cmdline_compose(buf, sizeof(buf), "", HOST_PVM, true), 1);
	assert_string_equal(buf, PVM_GUEST_CMDLINE);
	assert_int_equal(host_cmdline_compose(small, sizeof(small), "console=ttyS0", HOST_PVM, true),
			 -ENAMETOOLONG);
}

static void test_quirk_actions(void **state)
{
	const uint8_t int3[] = { 0xcc }, fwait[] = { 0x9b }, xrstor[] = { 0x48, 0x0f, 0xae, 0x2f };

	assert_int_equal(host_quirk_for_insn(HOST_PVM, true, int3, 1), QUIRK_INJECT_BP);
	assert_int_equal(host_quirk_for_insn(HOST_PVM, true, fwait, 1), QUIRK_SKIP);
	assert_int_equal(host_quirk_for_insn(HOST_PVM, true, xrstor, 4), QUIRK_NONE);
	assert_int_equal(host_quirk_for_insn(HOST_PVM, true, int3, 0), QUIRK_NONE);
	/* Never on hardware hosts, never when turned off. */
	assert_int_equal(host_quirk_for_insn(HOST_VMX, true, int3, 1), QUIRK_NONE);
	assert_int_equal(host_quirk_for_insn(HOST_SVM, true, fwait, 1), QUIRK_NONE);
	assert_int_equal(host_quirk_for_insn(HOST_PVM, false, int3, 1), QUIRK_NONE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_detect_pvm),
		cmocka_unit_test(test_detect_vmx),
		cmocka_unit_test(test_detect_svm_beats_pvm),
		cmocka_unit_test(test_detect_flag_is_whole_word),
		cmocka_unit_test(test_cmdline_compose),
		cmocka_unit_test(test_quirk_actions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

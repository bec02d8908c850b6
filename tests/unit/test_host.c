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

#include "lib/util.h"
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

#define PVM_NUMBERS	"154,151,156,293,291,296,288,158,306,297,580,150,307,317,153,129," \
			"534,311,312,308,295,514,515,516,298,145"
#define PVM_ADDED	PVM_GUEST_FLAGS " clearcpuid=" PVM_NUMBERS

static void test_pvm_numbers(void **state)
{
	/* xsave is word 4 bit 26, pcid word 4 bit 17: Linux 6.1 cpufeatures.h. */
	assert_string_equal(host_pvm_clearcpuid(), PVM_NUMBERS);
	assert_true(strlen(host_pvm_clearcpuid()) <= CLEARCPUID_MAX);
}

static void test_cmdline_compose(void **state)
{
	struct host_cmdline_added a;
	char buf[1024], small[16];

	assert_int_equal(host_cmdline_compose(buf, sizeof(buf), "console=ttyS0", HOST_PVM, true, &a),
			 1);
	assert_string_equal(buf, "console=ttyS0 " PVM_ADDED);
	assert_int_equal(a.off, strlen("console=ttyS0 "));
	assert_int_equal(a.len, strlen(PVM_ADDED));
	assert_int_equal(host_cmdline_compose(buf, sizeof(buf), "", HOST_PVM, true, &a), 1);
	assert_string_equal(buf, PVM_ADDED);
	assert_int_equal(a.off, 0);
	assert_int_equal(host_cmdline_compose(small, sizeof(small), "console=ttyS0", HOST_PVM,
					      true, NULL), -ENAMETOOLONG);
}

static void test_cmdline_compose_not_pvm(void **state)
{
	static const enum host_kind kinds[] = { HOST_VMX, HOST_SVM, HOST_UNKNOWN };
	const char *user = "console=ttyS0 clearcpuid=xsave  quiet";
	char buf[1024], small[8];
	unsigned int i;

	/* Nothing added and nothing changed, spaces included. */
	for (i = 0; i < ARRAY_SIZE(kinds); i++) {
		assert_int_equal(host_cmdline_compose(buf, sizeof(buf), user, kinds[i], true, NULL),
				 0);
		assert_string_equal(buf, user);
	}
	assert_int_equal(host_cmdline_compose(buf, sizeof(buf), user, HOST_PVM, false, NULL), 0);
	assert_string_equal(buf, user);
	assert_int_equal(host_cmdline_compose(small, sizeof(small), user, HOST_VMX, true, NULL),
			 -ENAMETOOLONG);
}

static void test_cmdline_merge_user_clearcpuid(void **state)
{
	char buf[1024];

	/* The user's stay first, ours follow by number even where named. */
	assert_int_equal(host_cmdline_compose(buf, sizeof(buf),
					      "clearcpuid=xsave,602 console=ttyS0 clearcpuid=154,7",
					      HOST_PVM, true, NULL), 1);
	assert_string_equal(buf, "console=ttyS0 " PVM_GUEST_FLAGS " clearcpuid=xsave,602,154,7,"
			    "151,156,293,291,296,288,158,306,297,580,150,307,317,153,129,"
			    "534,311,312,308,295,514,515,516,298,145");
	assert_int_equal(host_cmdline_compose(buf, sizeof(buf), "clearcpuid=xsave", HOST_PVM, true,
					      NULL), 1);
	assert_string_equal(buf, PVM_GUEST_FLAGS " clearcpuid=xsave," PVM_NUMBERS);
	/* Quoted forms, and what follows "--" is init's and stays after. */
	assert_int_equal(host_cmdline_compose(buf, sizeof(buf),
					      "a=\"b c\" clearcpuid=\"5\" -- clearcpuid=9 x",
					      HOST_PVM, true, NULL), 1);
	assert_string_equal(buf, "a=\"b c\" " PVM_GUEST_FLAGS " clearcpuid=5," PVM_NUMBERS
			    " -- clearcpuid=9 x");
	assert_int_equal(host_cmdline_compose(buf, sizeof(buf), "\"clearcpuid=6\"", HOST_PVM,
					      true, NULL), 1);
	assert_string_equal(buf, PVM_GUEST_FLAGS " clearcpuid=6," PVM_NUMBERS);
	/* clearcpuidx= is another parameter. */
	assert_int_equal(host_cmdline_compose(buf, sizeof(buf), "clearcpuidx=1", HOST_PVM, true,
					      NULL), 1);
	assert_string_equal(buf, "clearcpuidx=1 " PVM_ADDED);
}

static void test_cmdline_clearcpuid_too_long(void **state)
{
	char buf[1024];

	/* 103 characters are ours: 24 more fit, 25 do not (Linux reads 127). */
	assert_int_equal(host_cmdline_compose(buf, sizeof(buf), "clearcpuid=12345678901234567890123",
					      HOST_PVM, true, NULL), 1);
	assert_int_equal(strlen(strstr(buf, "clearcpuid=") + strlen("clearcpuid=")),
			 CLEARCPUID_MAX);
	assert_int_equal(host_cmdline_compose(buf, sizeof(buf),
					      "clearcpuid=123456789012345678901234",
					      HOST_PVM, true, NULL), -E2BIG);
}

static void test_kind_words(void **state)
{
	assert_string_equal(host_kind_word(HOST_PVM), "pvm");
	assert_string_equal(host_kind_word(HOST_VMX), "vmx");
	assert_string_equal(host_kind_word(HOST_SVM), "svm");
	assert_string_equal(host_kind_word(HOST_UNKNOWN), "unknown");
	assert_int_equal(host_kind_parse("pvm"), HOST_PVM);
	assert_int_equal(host_kind_parse("svm"), HOST_SVM);
	assert_int_equal(host_kind_parse("PVM"), -1);
	assert_int_equal(host_kind_parse(""), -1);
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
		cmocka_unit_test(test_pvm_numbers),
		cmocka_unit_test(test_cmdline_compose),
		cmocka_unit_test(test_cmdline_compose_not_pvm),
		cmocka_unit_test(test_cmdline_merge_user_clearcpuid),
		cmocka_unit_test(test_cmdline_clearcpuid_too_long),
		cmocka_unit_test(test_kind_words),
		cmocka_unit_test(test_quirk_actions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

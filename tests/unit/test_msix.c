// SPDX-License-Identifier: MIT
/* pci/msix.c: the table, the pending bits, masking and routing. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "pci/msix.h"

struct sink {
	unsigned int fires[MSIX_MAX_VECTORS];
	unsigned int nr_fires;
	unsigned int routes;
	unsigned int last_route_vec;
	uint64_t addr[MSIX_MAX_VECTORS];
	uint32_t data[MSIX_MAX_VECTORS];
	uint64_t fired_addr;		/* the route in place when the last fire came */
	int route_ret;
};

static void sink_fire(void *opaque, unsigned int v)
{
	struct sink *s = opaque;

	s->fires[v]++;
	s->nr_fires++;
	s->fired_addr = s->addr[v];
}

static int sink_route(void *opaque, unsigned int v, uint64_t addr, uint32_t data)
{
	struct sink *s = opaque;

	s->routes++;
	s->last_route_vec = v;
	s->addr[v] = addr;
	s->data[v] = data;
	return s->route_ret;
}

struct fix {
	struct msix m;
	struct sink s;
};

static int setup(void **state)
{
	static struct fix f;
	struct msix_sink sink = { .fire = sink_fire, .route = sink_route, .opaque = &f.s };

	memset(&f, 0, sizeof(f));
	assert_int_equal(msix_init(&f.m, 3), 0);
	msix_set_sink(&f.m, &sink);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	msix_destroy(&f->m);
	return 0;
}

static uint32_t rd(struct msix *m, unsigned int off)
{
	return msix_bar_ops.read(m, off, 4);
}

static void wr(struct msix *m, unsigned int off, uint32_t val)
{
	msix_bar_ops.write(m, off, 4, val);
}

static unsigned int ent(unsigned int v, unsigned int field)
{
	return MSIX_TABLE_OFF + v * MSIX_ENTRY_SIZE + field;
}

/* Program vector v with a message and unmask it, as Linux does. */
static void program(struct msix *m, unsigned int v, uint32_t addr, uint32_t data)
{
	wr(m, ent(v, 0), addr);
	wr(m, ent(v, 4), 0);
	wr(m, ent(v, 8), data);
	wr(m, ent(v, 12), 0);
}

static void test_init_limits(void **state)
{
	struct msix m;

	(void)state;
	assert_int_equal(msix_init(&m, 0), -EINVAL);
	assert_int_equal(msix_init(&m, MSIX_MAX_VECTORS + 1), -EINVAL);
	assert_int_equal(msix_init(&m, MSIX_MAX_VECTORS), 0);
	msix_destroy(&m);
}

static void test_cap_body(void **state)
{
	struct fix *f = *state;
	uint8_t body[MSIX_CAP_BODY_LEN], wmask[MSIX_CAP_BODY_LEN];

	msix_cap_body(&f->m, 1, body, wmask);
	/* Table size N-1, enable and function mask the only writable bits. */
	assert_int_equal(body[0] | body[1] << 8, 2);
	assert_int_equal(wmask[0], 0);
	assert_int_equal(wmask[1], 0xc0);
	/* Table at 0 in BAR 1, PBA at 0x800 in BAR 1. */
	assert_int_equal(body[2] | body[3] << 8 | body[4] << 16 | (uint32_t)body[5] << 24,
			 MSIX_TABLE_OFF | 1);
	assert_int_equal(body[6] | body[7] << 8 | body[8] << 16 | (uint32_t)body[9] << 24,
			 MSIX_PBA_OFF | 1);
	assert_int_equal(wmask[2] | wmask[3] | wmask[4] | wmask[5] | wmask[6] | wmask[9], 0);
}

static void test_table_reset_state(void **state)
{
	struct fix *f = *state;
	unsigned int v;

	for (v = 0; v < 3; v++) {
		assert_int_equal(rd(&f->m, ent(v, 0)), 0);
		assert_int_equal(rd(&f->m, ent(v, 8)), 0);
		assert_int_equal(rd(&f->m, ent(v, 12)), MSIX_ENTRY_CTRL_MASK);
	}
	assert_int_equal(rd(&f->m, MSIX_PBA_OFF), 0);
	assert_false(msix_enabled(&f->m));
}

static void test_table_rw_reserved(void **state)
{
	struct fix *f = *state;

	wr(&f->m, ent(1, 0), 0xfee00003);	/* low address bits are reserved */
	wr(&f->m, ent(1, 4), 0x12345678);
	wr(&f->m, ent(1, 8), 0xabcd);
	wr(&f->m, ent(1, 12), 0xfffffffe);	/* reserved bits, mask bit clear */
	assert_int_equal(rd(&f->m, ent(1, 0)), 0xfee00000);
	assert_int_equal(rd(&f->m, ent(1, 4)), 0x12345678);
	assert_int_equal(rd(&f->m, ent(1, 8)), 0xabcd);
	assert_int_equal(rd(&f->m, ent(1, 12)), 0);
	/* Not dword accesses: read as all ones, writes dropped. */
	assert_int_equal(msix_bar_ops.read(&f->m, ent(1, 8), 2), UINT32_MAX);
	assert_int_equal(msix_bar_ops.read(&f->m, ent(1, 9), 4), UINT32_MAX);
	msix_bar_ops.write(&f->m, ent(1, 8), 2, 0x1111);
	msix_bar_ops.write(&f->m, ent(1, 10), 4, 0x2222);
	assert_int_equal(rd(&f->m, ent(1, 8)), 0xabcd);
	/* Past the table (3 entries) and in the PBA: nothing is writable. */
	wr(&f->m, ent(3, 0), 0x1234);
	assert_int_equal(rd(&f->m, ent(3, 0)), UINT32_MAX);
	wr(&f->m, MSIX_PBA_OFF, 0xffffffff);
	assert_int_equal(rd(&f->m, MSIX_PBA_OFF), 0);
	assert_int_equal(f->s.nr_fires, 0);
}

static void test_disabled_sends_nothing(void **state)
{
	struct fix *f = *state;

	program(&f->m, 0, 0xfee00000, 0x41);
	/* Disabled: the caller is told, to use INTx instead. */
	assert_int_equal(msix_notify(&f->m, 0), -ENODEV);
	assert_int_equal(msix_notify(&f->m, 99), -ENODEV);
	assert_int_equal(f->s.nr_fires, 0);
	/* Disabled is not masked: nothing is held for later either. */
	assert_false(msix_pending(&f->m, 0));
	msix_control_write(&f->m, MSIX_CONTROL_ENABLE);
	assert_int_equal(f->s.nr_fires, 0);
}

static void test_deliver_routes_first(void **state)
{
	struct fix *f = *state;

	msix_control_write(&f->m, MSIX_CONTROL_ENABLE);
	assert_true(msix_enabled(&f->m));
	program(&f->m, 2, 0xfee01000, 0x42);
	/* The route was set at unmask, once for the three dwords. */
	assert_int_equal(f->s.routes, 1);
	assert_int_equal(f->s.last_route_vec, 2);
	assert_int_equal(f->s.addr[2], 0xfee01000);
	assert_int_equal(f->s.data[2], 0x42);
	assert_int_equal(msix_notify(&f->m, 2), 1);
	assert_int_equal(msix_notify(&f->m, 2), 1);
	assert_int_equal(f->s.fires[2], 2);
	assert_int_equal(f->s.routes, 1);	/* unchanged message: no new route */
	/* Changed while unmasked: routed before the next message goes out. */
	wr(&f->m, ent(2, 0), 0xfee02000);
	assert_int_equal(msix_notify(&f->m, 2), 1);
	assert_int_equal(f->s.routes, 2);
	assert_int_equal(f->s.fired_addr, 0xfee02000);
	assert_int_equal(f->m.fired, 3);
}

static void test_bad_vector(void **state)
{
	struct fix *f = *state;

	msix_control_write(&f->m, MSIX_CONTROL_ENABLE);
	assert_int_equal(msix_notify(&f->m, 3), -EINVAL);
	assert_int_equal(msix_notify(&f->m, UINT32_MAX), -EINVAL);
	assert_false(msix_pending(&f->m, 3));
	assert_int_equal(f->s.nr_fires, 0);
}

static void test_entry_mask_pending(void **state)
{
	struct fix *f = *state;

	msix_control_write(&f->m, MSIX_CONTROL_ENABLE);
	program(&f->m, 1, 0xfee00000, 0x51);
	wr(&f->m, ent(1, 12), MSIX_ENTRY_CTRL_MASK);
	assert_int_equal(msix_notify(&f->m, 1), 0);
	assert_int_equal(msix_notify(&f->m, 1), 0);
	assert_true(msix_pending(&f->m, 1));
	assert_int_equal(rd(&f->m, MSIX_PBA_OFF), 1u << 1);
	assert_int_equal(f->s.nr_fires, 0);
	/* Unmask: one message for what was held, and the bit clears. */
	wr(&f->m, ent(1, 12), 0);
	assert_int_equal(f->s.fires[1], 1);
	assert_false(msix_pending(&f->m, 1));
	assert_int_equal(rd(&f->m, MSIX_PBA_OFF), 0);
	/* Unmasking again with nothing pending sends nothing. */
	wr(&f->m, ent(1, 12), 0);
	assert_int_equal(f->s.fires[1], 1);
}

static void test_function_mask_pending(void **state)
{
	struct fix *f = *state;

	msix_control_write(&f->m, MSIX_CONTROL_ENABLE);
	program(&f->m, 0, 0xfee00000, 0x61);
	program(&f->m, 2, 0xfee00000, 0x62);
	msix_control_write(&f->m, MSIX_CONTROL_ENABLE | MSIX_CONTROL_MASKALL);
	assert_int_equal(msix_notify(&f->m, 0), 0);
	assert_int_equal(msix_notify(&f->m, 2), 0);
	assert_int_equal(rd(&f->m, MSIX_PBA_OFF), (1u << 0) | (1u << 2));
	/* The entry's own mask still holds vector 2 after the function mask goes. */
	wr(&f->m, ent(2, 12), MSIX_ENTRY_CTRL_MASK);
	msix_control_write(&f->m, MSIX_CONTROL_ENABLE);
	assert_int_equal(f->s.fires[0], 1);
	assert_int_equal(f->s.fires[2], 0);
	assert_true(msix_pending(&f->m, 2));
	wr(&f->m, ent(2, 12), 0);
	assert_int_equal(f->s.fires[2], 1);
	assert_int_equal(f->m.pended, 2);
}

static void test_pending_then_disable(void **state)
{
	struct fix *f = *state;

	assert_false(msix_control_write(&f->m, MSIX_CONTROL_ENABLE | MSIX_CONTROL_MASKALL));
	program(&f->m, 0, 0xfee00000, 0x71);
	assert_int_equal(msix_notify(&f->m, 0), 0);
	/* Disabling drops the bit and says so (the caller turns it into INTx). */
	assert_true(msix_control_write(&f->m, 0));
	assert_false(msix_pending(&f->m, 0));
	assert_int_equal(f->s.nr_fires, 0);
	assert_false(msix_control_write(&f->m, MSIX_CONTROL_ENABLE));
	assert_int_equal(f->s.nr_fires, 0);
	assert_false(msix_control_write(&f->m, 0));
}

static void test_route_failure_still_sends(void **state)
{
	struct fix *f = *state;

	f->s.route_ret = -ENOMEM;
	msix_control_write(&f->m, MSIX_CONTROL_ENABLE);
	program(&f->m, 0, 0x12345678, 0x81);
	assert_int_equal(f->s.routes, 1);
	assert_true(f->m.route_warned);
	/* Still sent (on the route in place), and the route tried again first. */
	assert_int_equal(msix_notify(&f->m, 0), 1);
	assert_int_equal(f->s.fires[0], 1);
	assert_int_equal(f->s.routes, 2);
	/* Once it takes, no more tries. */
	f->s.route_ret = 0;
	assert_int_equal(msix_notify(&f->m, 0), 1);
	assert_int_equal(msix_notify(&f->m, 0), 1);
	assert_int_equal(f->s.routes, 3);
	assert_int_equal(f->s.fires[0], 3);
}

static void test_clear_pending(void **state)
{
	struct fix *f = *state;

	msix_control_write(&f->m, MSIX_CONTROL_ENABLE | MSIX_CONTROL_MASKALL);
	program(&f->m, 1, 0xfee00000, 0x91);
	assert_int_equal(msix_notify(&f->m, 1), 0);
	assert_true(msix_pending(&f->m, 1));
	msix_clear_pending(&f->m);
	assert_false(msix_pending(&f->m, 1));
	msix_control_write(&f->m, MSIX_CONTROL_ENABLE);
	assert_int_equal(f->s.nr_fires, 0);
}

static void test_many_vectors_pba_words(void **state)
{
	struct msix m;
	struct sink s = { 0 };
	struct msix_sink sink = { .fire = sink_fire, .route = sink_route, .opaque = &s };
	unsigned int v;

	(void)state;
	assert_int_equal(msix_init(&m, MSIX_MAX_VECTORS), 0);
	msix_set_sink(&m, &sink);
	msix_control_write(&m, MSIX_CONTROL_ENABLE | MSIX_CONTROL_MASKALL);
	assert_int_equal(msix_notify(&m, 33), 0);
	assert_int_equal(msix_notify(&m, 64), 0);
	assert_int_equal(msix_notify(&m, MSIX_MAX_VECTORS - 1), 0);
	assert_int_equal(rd(&m, MSIX_PBA_OFF + 4), 1u << 1);		/* vector 33 */
	assert_int_equal(rd(&m, MSIX_PBA_OFF + 8), 1u);			/* vector 64 */
	assert_int_equal(rd(&m, MSIX_PBA_OFF + 12), 1u << 31);		/* vector 127 */
	/* Past the PBA's last word: zeros, not memory beyond the array. */
	assert_int_equal(rd(&m, MSIX_PBA_OFF + 16), 0);
	assert_int_equal(rd(&m, MSIX_BAR_SIZE - 4), 0);
	for (v = 0; v < MSIX_MAX_VECTORS; v++)
		wr(&m, ent(v, 12), 0);
	msix_control_write(&m, MSIX_CONTROL_ENABLE);
	assert_int_equal(s.nr_fires, 3);
	assert_int_equal(s.fires[64], 1);
	msix_destroy(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_limits),
		cmocka_unit_test_setup_teardown(test_cap_body, setup, teardown),
		cmocka_unit_test_setup_teardown(test_table_reset_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_table_rw_reserved, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disabled_sends_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deliver_routes_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_vector, setup, teardown),
		cmocka_unit_test_setup_teardown(test_entry_mask_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(test_function_mask_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pending_then_disable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_route_failure_still_sends, setup, teardown),
		cmocka_unit_test_setup_teardown(test_clear_pending, setup, teardown),
		cmocka_unit_test(test_many_vectors_pba_words),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

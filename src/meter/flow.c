#include "meter/flow.h"

static const char *const flow_end_texts[] = {
#define FLOW_END_TEXT(name, ie, text) text,
	FLOW_END_MAP(FLOW_END_TEXT)
#undef FLOW_END_TEXT
};

static const uint8_t flow_end_ies[] = {
#define FLOW_END_IE(name, ie, text) ie,
	FLOW_END_MAP(FLOW_END_IE)
#undef FLOW_END_IE
};

const char *flow_end_text(enum flow_end e)
{
	return (unsigned)e < FLOW_END_COUNT ? flow_end_texts[e] : "unknown";
}

uint8_t flow_end_ie(enum flow_end e)
{
	return (unsigned)e < FLOW_END_COUNT ? flow_end_ies[e] : 0;
}

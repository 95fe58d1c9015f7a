/*
 * imap_fetch.c - FETCH responses to record fields (imap_fetch.h).
 */
#include <string.h>
#include <time.h>

#include <libetpan/condstore.h>
#include <libetpan/mailimap_extension.h>

#include "imap_fetch.h"
#include "imap_xguid.h"

int64_t imap_date_to_epoch(const struct mailimap_date_time *d)
{
	struct tm tm = { .tm_year = d->dt_year - 1900, .tm_mon = d->dt_month - 1,
			 .tm_mday = d->dt_day, .tm_hour = d->dt_hour, .tm_min = d->dt_min,
			 .tm_sec = d->dt_sec };
	int64_t t = (int64_t)timegm(&tm);
	int z = d->dt_zone < 0 ? -d->dt_zone : d->dt_zone;
	int64_t off = (int64_t)(z / 100) * 3600 + (int64_t)(z % 100) * 60;
	return d->dt_zone < 0 ? t + off : t - off;
}


void imap_fetched_parse(const struct mailimap_msg_att *ma, struct imap_fetched *f)
{
	memset(f, 0, sizeof(*f));
	for (clistiter *it = clist_begin(ma->att_list); it; it = clist_next(it)) {
		struct mailimap_msg_att_item *item = clist_content(it);
		if (item->att_type == MAILIMAP_MSG_ATT_ITEM_DYNAMIC) {
			f->has_flags = true;
			struct mailimap_msg_att_dynamic *dy = item->att_data.att_dyn;
			for (clistiter *fi = dy && dy->att_list ? clist_begin(dy->att_list) : NULL; fi; fi = clist_next(fi)) {
				struct mailimap_flag_fetch *ff = clist_content(fi);
				if (ff->fl_type != MAILIMAP_FLAG_FETCH_OTHER || ff->fl_flag == NULL)
					continue;   /* \Recent is the session's, not the message's */
				switch (ff->fl_flag->fl_type) {
				case MAILIMAP_FLAG_ANSWERED: f->flags |= 1u << ('R' - 'A'); break;
				case MAILIMAP_FLAG_FLAGGED: f->flags |= 1u << ('F' - 'A'); break;
				case MAILIMAP_FLAG_DELETED: f->flags |= 1u << ('T' - 'A'); break;
				case MAILIMAP_FLAG_SEEN: f->flags |= 1u << ('S' - 'A'); break;
				case MAILIMAP_FLAG_DRAFT: f->flags |= 1u << ('D' - 'A'); break;
				case MAILIMAP_FLAG_KEYWORD:
					if (f->nkw < SNAP_KEYWORDS_MAX)
						f->keywords[f->nkw++] = ff->fl_flag->fl_data.fl_keyword;
					else
						f->kw_overflow = true;
					break;
				default:
					break;   /* other \-flags can't be stored in Maildir */
				}
			}
		} else if (item->att_type == MAILIMAP_MSG_ATT_ITEM_STATIC && item->att_data.att_static) {
			struct mailimap_msg_att_static *st = item->att_data.att_static;
			switch (st->att_type) {
			case MAILIMAP_MSG_ATT_UID:
				f->uid = st->att_data.att_uid;
				f->has_uid = true;
				break;
			case MAILIMAP_MSG_ATT_RFC822_SIZE:
				f->size = st->att_data.att_rfc822_size;
				f->has_size = true;
				break;
			case MAILIMAP_MSG_ATT_INTERNALDATE:
				if (st->att_data.att_internal_date) {
					f->date = imap_date_to_epoch(st->att_data.att_internal_date);
					f->has_date = true;
				}
				break;
			case MAILIMAP_MSG_ATT_BODY_SECTION:
				if (st->att_data.att_body_section) {
					f->body = st->att_data.att_body_section->sec_body_part;
					f->body_len = st->att_data.att_body_section->sec_length;
					f->has_body = true;
					if (f->body == NULL)
						f->body_len = 0;
				}
				break;
			default:
				break;
			}
		} else if (item->att_type == MAILIMAP_MSG_ATT_ITEM_EXTENSION && item->att_data.att_extension_data) {
			struct mailimap_extension_data *ed = item->att_data.att_extension_data;
			const char *g = imap_xguid_of(ed);
			if (g)
				f->guid = g;
			else if (ed->ext_extension == &mailimap_extension_condstore &&
				 ed->ext_type == MAILIMAP_CONDSTORE_TYPE_FETCH_DATA && ed->ext_data)
				f->modseq = ((struct mailimap_condstore_fetch_mod_resp *)ed->ext_data)->cs_modseq_value;
		}
	}
}


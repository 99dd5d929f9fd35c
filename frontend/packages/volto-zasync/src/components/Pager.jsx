/** "Jobs 1 to 20 of 45" with previous and next, for the paged lists. */
import React from 'react';
import { Button } from 'semantic-ui-react';
import { useIntl } from 'react-intl';
import messages from './messages';

export default function Pager({ data, onPage }) {
  const intl = useIntl();
  const { b_start: start = 0, b_size: size, items = [], items_total: total, batching = {} } = data;
  if (!batching.prev && !batching.next) return null;
  return (
    <div className="zasync-pager">
      {total !== undefined && (
        <span className="zasync-page-of">
          {intl.formatMessage(messages.pageOf, {
            first: start + 1,
            last: start + items.length,
            total,
          })}
        </span>
      )}
      <Button.Group size="small" basic>
        <Button disabled={!batching.prev} onClick={() => onPage(Math.max(start - size, 0))}>
          {intl.formatMessage(messages.previous)}
        </Button>
        <Button disabled={!batching.next} onClick={() => onPage(start + size)}>
          {intl.formatMessage(messages.next)}
        </Button>
      </Button.Group>
    </div>
  );
}

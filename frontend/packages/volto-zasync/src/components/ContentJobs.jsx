/** An item's background jobs, for users who may modify the item. */
import React, { useState } from 'react';
import { Segment } from 'semantic-ui-react';
import { useIntl } from 'react-intl';
import { flattenToAppURL } from '@plone/volto/helpers/Url/Url';
import { isUnfinished, PAGE_SIZE } from '../helpers';
import { useZasync } from './hooks';
import JobsTable from './JobsTable';
import Pager from './Pager';
import Page from './Page';
import messages from './messages';

export const VIEW_NAME = 'background-jobs';

const anyUnfinished = (data) => (data.items || []).some(isUnfinished);

/** The item's path: the page's path without its last part. */
export function itemPath(pathname) {
  return flattenToAppURL(pathname).replace(new RegExp(`/?${VIEW_NAME}/?$`), '') || '';
}

export default function ContentJobs({ location }) {
  const intl = useIntl();
  const [start, setStart] = useState(0);
  const path = itemPath(location.pathname);
  const [request] = useZasync(
    `content-jobs:${path}`,
    `${path}/@zasync-content-jobs?b_start=${start}&b_size=${PAGE_SIZE}`,
    anyUnfinished,
  );
  return (
    <Page
      title={intl.formatMessage(messages.backgroundJobs)}
      description={intl.formatMessage(messages.contentJobsDescription)}
      pathname={location.pathname}
      back={path || '/'}
      error={request.error}
      className="zasync-content-jobs"
    >
      {request.data && (
        <Segment basic>
          <JobsTable items={request.data.items} showUser />
          <Pager data={request.data} onPage={setStart} />
        </Segment>
      )}
    </Page>
  );
}

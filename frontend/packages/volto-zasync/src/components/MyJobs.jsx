/** My jobs: the current user's jobs, newest first; cancel the pending ones. */
import React, { useState } from 'react';
import { useDispatch } from 'react-redux';
import { Message, Segment } from 'semantic-ui-react';
import { useIntl } from 'react-intl';
import { changeZasync } from '../actions';
import { errorMessage, isUnfinished, PAGE_SIZE } from '../helpers';
import { useZasync } from './hooks';
import JobsTable from './JobsTable';
import Pager from './Pager';
import Page from './Page';
import messages from './messages';

const anyUnfinished = (data) => (data.items || []).some(isUnfinished);

export default function MyJobs({ location }) {
  const intl = useIntl();
  const dispatch = useDispatch();
  const [start, setStart] = useState(0);
  const [actionError, setActionError] = useState(null);
  const [request, reload] = useZasync(
    'my-jobs',
    `/@zasync-my-jobs?b_start=${start}&b_size=${PAGE_SIZE}`,
    anyUnfinished,
  );
  const cancel = (job) =>
    dispatch(changeZasync('my-jobs-cancel', 'post', `/@zasync-my-jobs/${job.id}/cancel`))
      .then(() => setActionError(null))
      .catch((error) => setActionError(errorMessage(error)))
      .finally(reload);
  return (
    <Page
      title={intl.formatMessage(messages.myJobs)}
      description={intl.formatMessage(messages.myJobsDescription)}
      pathname={location.pathname}
      back="/"
      error={request.error}
      className="zasync-my-jobs"
    >
      {actionError && (
        <Message negative>
          {intl.formatMessage(messages.actionError, { message: actionError })}
        </Message>
      )}
      {request.data && (
        <Segment basic>
          <JobsTable items={request.data.items} onCancel={cancel} />
          <Pager data={request.data} onPage={setStart} />
        </Segment>
      )}
    </Page>
  );
}

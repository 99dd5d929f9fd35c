/** One job in the control panel: what, who, when, how far, how it ended; its actions. */
import React, { useState } from 'react';
import { useDispatch } from 'react-redux';
import { useHistory } from 'react-router-dom';
import { Button, Message, Segment, Table } from 'semantic-ui-react';
import { useIntl } from 'react-intl';
import FormattedDate from '@plone/volto/components/theme/FormattedDate/FormattedDate';
import { changeZasync } from '../actions';
import { errorMessage, isUnfinished } from '../helpers';
import { useZasync } from './hooks';
import { JobProgress, StateLabel } from './JobState';
import { PANEL, panelURL } from './JobsPanel';
import Page from './Page';
import messages from './messages';

const ACTIONS = {
  retry: { method: 'post', suffix: '/retry', negative: false },
  cancel: { method: 'post', suffix: '/cancel', negative: true },
  remove: { method: 'del', suffix: '', negative: true },
};

function Row({ label, children }) {
  return (
    <Table.Row>
      <Table.Cell width={3}>
        <strong>{label}</strong>
      </Table.Cell>
      <Table.Cell>{children}</Table.Cell>
    </Table.Row>
  );
}

function When({ date }) {
  return date ? <FormattedDate date={date} includeTime /> : null;
}

export default function JobPage({ location, match }) {
  const intl = useIntl();
  const dispatch = useDispatch();
  const history = useHistory();
  const { jobId } = match.params;
  const [actionError, setActionError] = useState(null);
  const [request, reload] = useZasync(`job:${jobId}`, `/@zasync-jobs/${jobId}`, isUnfinished);
  const job = request.data;
  const act = (name) => {
    const { method, suffix } = ACTIONS[name];
    return dispatch(changeZasync(`job-action:${jobId}`, method, `/@zasync-jobs/${jobId}${suffix}`))
      .then(() => {
        setActionError(null);
        if (name === 'remove') {
          history.push(panelURL({ queue: job.queue, state: job.state }));
        } else {
          reload();
        }
      })
      .catch((error) => setActionError(errorMessage(error)));
  };
  return (
    <Page
      title={intl.formatMessage(messages.jobTitle, { id: jobId })}
      pathname={location.pathname}
      back={job ? panelURL({ queue: job.queue, state: job.state }) : PANEL}
      error={request.error}
      className="zasync-job-page"
    >
      {actionError && (
        <Message negative>
          {intl.formatMessage(messages.actionError, { message: actionError })}
        </Message>
      )}
      {job && (
        <>
          <Segment basic className="zasync-actions">
            {job.actions.map((name) => (
              <Button
                key={name}
                size="small"
                primary={!ACTIONS[name]?.negative}
                negative={ACTIONS[name]?.negative}
                className={`zasync-${name}`}
                onClick={() => act(name)}
              >
                {intl.formatMessage(messages[name])}
              </Button>
            ))}
          </Segment>
          <Table celled definition compact className="zasync-job-details">
            <Table.Body>
              <Row label={intl.formatMessage(messages.state)}>
                <StateLabel state={job.state} />
              </Row>
              <Row label={intl.formatMessage(messages.function)}>
                <code>{job.callable}</code>
              </Row>
              <Row label={intl.formatMessage(messages.context)}>{job.context_path}</Row>
              <Row label={intl.formatMessage(messages.queue)}>
                {job.queue || intl.formatMessage(messages.defaultQueue)}
              </Row>
              <Row label={intl.formatMessage(messages.user)}>
                {job.user || intl.formatMessage(messages.anonymous)}
              </Row>
              <Row label={intl.formatMessage(messages.queued)}>
                <When date={job.queued} />
              </Row>
              {job.begin_after && (
                <Row label={intl.formatMessage(messages.beginAfter)}>
                  <When date={job.begin_after} />
                </Row>
              )}
              <Row label={intl.formatMessage(messages.started)}>
                <When date={job.started} />
              </Row>
              <Row label={intl.formatMessage(messages.ended)}>
                <When date={job.ended} />
              </Row>
              <Row label={intl.formatMessage(messages.attempts)}>{job.attempts}</Row>
              <Row label={intl.formatMessage(messages.priority)}>{job.priority}</Row>
              <Row label={intl.formatMessage(messages.worker)}>
                {job.worker_uuid && <code>{job.worker_uuid}</code>}
              </Row>
              <Row label={intl.formatMessage(messages.progress)}>
                <JobProgress job={job} />
              </Row>
              <Row label={intl.formatMessage(messages.arguments)}>
                <code>
                  {(job.args || []).join(', ')}
                  {Object.entries(job.kwargs || {})
                    .map(([key, value]) => ` ${key}=${value}`)
                    .join(',')}
                </code>
              </Row>
              {job.result !== null && job.result !== undefined && (
                <Row label={intl.formatMessage(messages.result)}>
                  <code className="zasync-result">{job.result}</code>
                </Row>
              )}
              {job.failure && (
                <Row label={intl.formatMessage(messages.error)}>
                  <span className="zasync-error">{job.failure}</span>
                </Row>
              )}
            </Table.Body>
          </Table>
          {job.cancel_requested_by && (
            <Message info>
              {intl.formatMessage(messages.cancelRequested, { user: job.cancel_requested_by })}
            </Message>
          )}
          {job.traceback && (
            <Segment className="zasync-traceback">
              <strong>{intl.formatMessage(messages.traceback)}</strong>
              <pre>{job.traceback}</pre>
            </Segment>
          )}
        </>
      )}
    </Page>
  );
}

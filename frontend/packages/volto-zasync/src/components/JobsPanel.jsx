/** Site Setup → Background jobs: queues, workers, and the jobs of one queue in one state. */
import React, { useState } from 'react';
import { useDispatch } from 'react-redux';
import { Link, useHistory } from 'react-router-dom';
import { Button, Header, Label, Menu, Message, Segment, Table } from 'semantic-ui-react';
import { useIntl } from 'react-intl';
import FormattedDate from '@plone/volto/components/theme/FormattedDate/FormattedDate';
import { changeZasync } from '../actions';
import { errorMessage, isUnfinished, PAGE_SIZE, STATES } from '../helpers';
import { useZasync } from './hooks';
import { JobProgress, StateLabel } from './JobState';
import Pager from './Pager';
import Page from './Page';
import messages from './messages';

export const PANEL = '/controlpanel/zasync';

/** The list the panel shows: `?queue=&state=&b_start=` of its URL. */
export function selection(search) {
  const params = new URLSearchParams(search || '');
  const state = params.get('state');
  return {
    queue: params.get('queue') || '',
    state: STATES.includes(state) ? state : 'failed',
    start: Math.max(parseInt(params.get('b_start'), 10) || 0, 0),
  };
}

export function panelURL({ queue, state, start = 0 }) {
  const params = new URLSearchParams({ queue, state });
  if (start) params.set('b_start', start);
  return `${PANEL}?${params}`;
}

function queueName(intl, name) {
  return name || intl.formatMessage(messages.defaultQueue);
}

function Queues({ queues, selected }) {
  const intl = useIntl();
  return (
    <Table celled compact className="zasync-queues">
      <Table.Header>
        <Table.Row>
          <Table.HeaderCell>{intl.formatMessage(messages.queue)}</Table.HeaderCell>
          {STATES.map((state) => (
            <Table.HeaderCell key={state}>
              <StateLabel state={state} />
            </Table.HeaderCell>
          ))}
          <Table.HeaderCell>{intl.formatMessage(messages.rateLimits)}</Table.HeaderCell>
        </Table.Row>
      </Table.Header>
      <Table.Body>
        {queues.map((queue) => (
          <Table.Row key={queue.name} data-queue={queue.name}>
            <Table.Cell>{queueName(intl, queue.name)}</Table.Cell>
            {STATES.map((state) => (
              <Table.Cell
                key={state}
                active={selected.queue === queue.name && selected.state === state}
              >
                <Link to={panelURL({ queue: queue.name, state })} className={`count-${state}`}>
                  {queue.counts[state]}
                </Link>
              </Table.Cell>
            ))}
            <Table.Cell>
              {Object.entries(queue.rate_limits || {}).map(([name, limit]) => (
                <div key={name}>{intl.formatMessage(messages.rateLimit, { name, ...limit })}</div>
              ))}
              {!Object.keys(queue.rate_limits || {}).length &&
                intl.formatMessage(messages.noLimits)}
            </Table.Cell>
          </Table.Row>
        ))}
      </Table.Body>
    </Table>
  );
}

function Recurring({ queues }) {
  const intl = useIntl();
  const recurring = queues.flatMap((queue) => queue.recurring || []);
  if (!recurring.length) return null;
  return (
    <>
      <Header as="h2">{intl.formatMessage(messages.recurring)}</Header>
      <Table celled compact className="zasync-recurring">
        <Table.Header>
          <Table.Row>
            <Table.HeaderCell>{intl.formatMessage(messages.job)}</Table.HeaderCell>
            <Table.HeaderCell>{intl.formatMessage(messages.queue)}</Table.HeaderCell>
            <Table.HeaderCell>{intl.formatMessage(messages.schedule)}</Table.HeaderCell>
            <Table.HeaderCell>{intl.formatMessage(messages.nextRun)}</Table.HeaderCell>
          </Table.Row>
        </Table.Header>
        <Table.Body>
          {recurring.map((item) => (
            <Table.Row key={item.id}>
              <Table.Cell>{item.description}</Table.Cell>
              <Table.Cell>{queueName(intl, item.queue)}</Table.Cell>
              <Table.Cell>{item.schedule}</Table.Cell>
              <Table.Cell>
                {item.next_run && <FormattedDate date={item.next_run} includeTime />}
              </Table.Cell>
            </Table.Row>
          ))}
        </Table.Body>
      </Table>
    </>
  );
}

function Workers({ workers }) {
  const intl = useIntl();
  if (!workers.length) {
    return <Message warning>{intl.formatMessage(messages.noWorkers)}</Message>;
  }
  return (
    <Table celled compact className="zasync-workers">
      <Table.Header>
        <Table.Row>
          <Table.HeaderCell>{intl.formatMessage(messages.worker)}</Table.HeaderCell>
          <Table.HeaderCell>{intl.formatMessage(messages.host)}</Table.HeaderCell>
          <Table.HeaderCell>{intl.formatMessage(messages.threads)}</Table.HeaderCell>
          <Table.HeaderCell>{intl.formatMessage(messages.running)}</Table.HeaderCell>
          <Table.HeaderCell>{intl.formatMessage(messages.lastPing)}</Table.HeaderCell>
          <Table.HeaderCell>{intl.formatMessage(messages.state)}</Table.HeaderCell>
        </Table.Row>
      </Table.Header>
      <Table.Body>
        {workers.map((worker) => (
          <Table.Row key={worker.uuid} data-worker={worker.uuid}>
            <Table.Cell>
              <code>{worker.uuid}</code>
            </Table.Cell>
            <Table.Cell>
              {worker.host} ({worker.pid})
            </Table.Cell>
            <Table.Cell>{worker.threads}</Table.Cell>
            <Table.Cell>{worker.active}</Table.Cell>
            <Table.Cell>
              {worker.last_ping && <FormattedDate date={worker.last_ping} includeTime />}
            </Table.Cell>
            <Table.Cell>
              <Label size="small" color={worker.alive ? 'green' : 'red'}>
                {intl.formatMessage(worker.alive ? messages.alive : messages.dead)}
              </Label>
            </Table.Cell>
          </Table.Row>
        ))}
      </Table.Body>
    </Table>
  );
}

function JobList({ data }) {
  const intl = useIntl();
  if (!data.items.length) {
    return <p className="zasync-no-jobs">{intl.formatMessage(messages.noJobs)}</p>;
  }
  return (
    <Table celled compact className="zasync-jobs">
      <Table.Header>
        <Table.Row>
          <Table.HeaderCell>{intl.formatMessage(messages.job)}</Table.HeaderCell>
          <Table.HeaderCell>{intl.formatMessage(messages.user)}</Table.HeaderCell>
          <Table.HeaderCell>{intl.formatMessage(messages.state)}</Table.HeaderCell>
          <Table.HeaderCell width={3}>{intl.formatMessage(messages.progress)}</Table.HeaderCell>
          <Table.HeaderCell>{intl.formatMessage(messages.queued)}</Table.HeaderCell>
          <Table.HeaderCell>{intl.formatMessage(messages.result)}</Table.HeaderCell>
        </Table.Row>
      </Table.Header>
      <Table.Body>
        {data.items.map((job) => (
          <Table.Row key={job.id} data-job={job.id} className={`zasync-job ${job.state}`}>
            <Table.Cell>
              <Link to={`${PANEL}/jobs/${job.id}`}>{job.description}</Link>
            </Table.Cell>
            <Table.Cell>{job.user || intl.formatMessage(messages.anonymous)}</Table.Cell>
            <Table.Cell>
              <StateLabel state={job.state} />
            </Table.Cell>
            <Table.Cell>
              <JobProgress job={job} />
            </Table.Cell>
            <Table.Cell>
              {job.queued && <FormattedDate date={job.queued} includeTime />}
            </Table.Cell>
            <Table.Cell>
              {job.failure ? <span className="zasync-error">{job.failure}</span> : null}
            </Table.Cell>
          </Table.Row>
        ))}
      </Table.Body>
    </Table>
  );
}

export default function JobsPanel({ location }) {
  const intl = useIntl();
  const dispatch = useDispatch();
  const history = useHistory();
  const selected = selection(location.search);
  const [notice, setNotice] = useState(null);
  const [queues, reloadQueues] = useZasync('queues', '/@zasync-queues', (data) =>
    data.queues.some((queue) => queue.counts.pending || queue.counts.active),
  );
  const query = new URLSearchParams({
    queue: selected.queue,
    state: selected.state,
    b_start: selected.start,
    b_size: PAGE_SIZE,
  });
  const [jobs, reloadJobs] = useZasync(`jobs:${query}`, `/@zasync-jobs?${query}`, (data) =>
    data.items.some(isUnfinished),
  );
  const removeAll = () =>
    dispatch(
      changeZasync(
        'remove-all',
        'del',
        `/@zasync-jobs?${new URLSearchParams({ queue: selected.queue, state: selected.state })}`,
      ),
    )
      .then((answer) => setNotice({ positive: true, text: intl.formatMessage(messages.removed, { count: answer.removed }) }))
      .catch((error) => setNotice({ negative: true, text: intl.formatMessage(messages.actionError, { message: errorMessage(error) }) }))
      .finally(() => {
        reloadQueues();
        reloadJobs();
      });
  const finished = ['failed', 'completed'].includes(selected.state);
  return (
    <Page
      title={intl.formatMessage(messages.backgroundJobs)}
      pathname={location.pathname}
      back="/controlpanel"
      error={queues.error || jobs.error}
      className="zasync-panel"
    >
      <Menu secondary pointing>
        <Menu.Item active as={Link} to={PANEL}>
          {intl.formatMessage(messages.queues)}
        </Menu.Item>
        <Menu.Item as={Link} to={`${PANEL}/settings`}>
          {intl.formatMessage(messages.settings)}
        </Menu.Item>
      </Menu>
      {notice && <Message positive={notice.positive} negative={notice.negative}>{notice.text}</Message>}
      {queues.data && (
        <>
          <Queues queues={queues.data.queues} selected={selected} />
          <Recurring queues={queues.data.queues} />
          <Header as="h2">{intl.formatMessage(messages.workers)}</Header>
          <Workers workers={queues.data.workers} />
        </>
      )}
      <Segment className="zasync-job-list">
        <Header as="h2">
          {intl.formatMessage(messages.jobList, {
            queue: queueName(intl, selected.queue),
            state: intl.formatMessage(messages[selected.state]),
          })}
        </Header>
        {jobs.data && (
          <>
            <JobList data={jobs.data} />
            <Pager
              data={jobs.data}
              onPage={(start) => history.push(panelURL({ ...selected, start }))}
            />
            {finished && jobs.data.items.length > 0 && (
              <Button basic negative size="small" onClick={removeAll} className="zasync-remove-all">
                {intl.formatMessage(messages.removeFinished, {
                  state: intl.formatMessage(messages[selected.state]),
                })}
              </Button>
            )}
          </>
        )}
      </Segment>
    </Page>
  );
}

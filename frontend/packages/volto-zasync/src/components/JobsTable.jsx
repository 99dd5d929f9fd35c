/** A table of jobs as the personal services give them (My jobs, an item's jobs). */
import React from 'react';
import { Button, Table } from 'semantic-ui-react';
import { useIntl } from 'react-intl';
import FormattedDate from '@plone/volto/components/theme/FormattedDate/FormattedDate';
import { JobProgress, StateLabel } from './JobState';
import messages from './messages';

function Outcome({ job }) {
  if (job.error) {
    return <span className="zasync-error">{job.error}</span>;
  }
  return job.result === null || job.result === undefined ? null : (
    <code className="zasync-result">{job.result}</code>
  );
}

export default function JobsTable({ items, onCancel, showUser = false }) {
  const intl = useIntl();
  if (!items.length) {
    return <p className="zasync-no-jobs">{intl.formatMessage(messages.noJobs)}</p>;
  }
  return (
    <Table celled compact className="zasync-jobs">
      <Table.Header>
        <Table.Row>
          <Table.HeaderCell>{intl.formatMessage(messages.job)}</Table.HeaderCell>
          {showUser && <Table.HeaderCell>{intl.formatMessage(messages.user)}</Table.HeaderCell>}
          <Table.HeaderCell>{intl.formatMessage(messages.state)}</Table.HeaderCell>
          <Table.HeaderCell width={3}>{intl.formatMessage(messages.progress)}</Table.HeaderCell>
          <Table.HeaderCell>{intl.formatMessage(messages.queued)}</Table.HeaderCell>
          <Table.HeaderCell>{intl.formatMessage(messages.result)}</Table.HeaderCell>
          {onCancel && <Table.HeaderCell>{intl.formatMessage(messages.actions)}</Table.HeaderCell>}
        </Table.Row>
      </Table.Header>
      <Table.Body>
        {items.map((job) => (
          <Table.Row key={job.id} data-job={job.id} className={`zasync-job ${job.state}`}>
            <Table.Cell>{job.description}</Table.Cell>
            {showUser && (
              <Table.Cell>{job.user || intl.formatMessage(messages.anonymous)}</Table.Cell>
            )}
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
              <Outcome job={job} />
            </Table.Cell>
            {onCancel && (
              <Table.Cell>
                {job.cancellable && job.cancel && (
                  <Button size="tiny" basic negative onClick={() => onCancel(job)}>
                    {intl.formatMessage(messages.cancel)}
                  </Button>
                )}
              </Table.Cell>
            )}
          </Table.Row>
        ))}
      </Table.Body>
    </Table>
  );
}

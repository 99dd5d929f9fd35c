/** A job's state as a label, and its progress bar while it runs. */
import React from 'react';
import { Label, Progress } from 'semantic-ui-react';
import { useIntl } from 'react-intl';
import { stateColor } from '../helpers';
import messages from './messages';

export function StateLabel({ state }) {
  const intl = useIntl();
  return (
    <Label size="small" color={stateColor(state)} className={`zasync-state ${state}`}>
      {messages[state] ? intl.formatMessage(messages[state]) : state}
    </Label>
  );
}

/** Filled to `progress` (0 to 100) while the job reports it; nothing otherwise. */
export function JobProgress({ job }) {
  if (job.state === 'completed') {
    return <Progress percent={100} size="tiny" success className="zasync-progress" />;
  }
  if (job.progress === null || job.progress === undefined) {
    return null;
  }
  return (
    <Progress
      percent={Math.round(job.progress)}
      progress
      size="small"
      active={job.state === 'active'}
      indicating={job.state === 'active'}
      className="zasync-progress"
    />
  );
}

/** The site settings of collective.zasync: Volto's form for @controlpanels/zasync-settings. */
import React from 'react';
import Controlpanel from '@plone/volto/components/manage/Controlpanels/Controlpanel';

export const CONTROLPANEL_ID = 'zasync-settings';

export default function Settings(props) {
  const match = { ...props.match, params: { ...props.match.params, id: CONTROLPANEL_ID } };
  return <Controlpanel {...props} match={match} />;
}

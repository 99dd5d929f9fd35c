/** The site settings of collective.zasync: Volto's form for plone.restapi's @controlpanels/zasync. */
import React from 'react';
import Controlpanel from '@plone/volto/components/manage/Controlpanels/Controlpanel';

export const CONTROLPANEL_ID = 'zasync';

export default function Settings(props) {
  const match = { ...props.match, params: { ...props.match.params, id: CONTROLPANEL_ID } };
  return <Controlpanel {...props} match={match} />;
}

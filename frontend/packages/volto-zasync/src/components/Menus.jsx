/**
 * Links in Volto's toolbar: "My jobs" in the personal menu, and "Background jobs"
 * in the "More" menu of an item for users who may modify it. Rendered on every
 * page (config.settings.appExtras); the Plugs fill the toolbar's Pluggables.
 */
import React from 'react';
import { useSelector } from 'react-redux';
import { Link } from 'react-router-dom';
import { useIntl } from 'react-intl';
import { Plug } from '@plone/volto/components/manage/Pluggable';
import Icon from '@plone/volto/components/theme/Icon/Icon';
import { getBaseUrl } from '@plone/volto/helpers/Url/Url';
import rightArrowSVG from '@plone/volto/icons/right-key.svg';
import { VIEW_NAME } from './ContentJobs';
import messages from './messages';

export default function Menus({ pathname }) {
  const intl = useIntl();
  const loggedIn = useSelector((state) => Boolean(state.userSession?.token));
  const objectActions = useSelector((state) => state.actions?.actions?.object) || [];
  const mayEdit = objectActions.some((action) => action.id === 'edit');
  const base = getBaseUrl(pathname || '');
  return (
    <>
      {loggedIn && (
        <Plug pluggable="toolbar-user-menu" id="zasync-my-jobs">
          <li>
            <Link to="/my-jobs" className="zasync-my-jobs-link">
              {intl.formatMessage(messages.myJobs)}
              <Icon name={rightArrowSVG} size="24px" />
            </Link>
          </li>
        </Plug>
      )}
      {mayEdit && (
        <Plug pluggable="toolbar-more-menu-list" id="zasync-content-jobs">
          <li>
            <Link to={`${base === '/' ? '' : base}/${VIEW_NAME}`} className="zasync-content-jobs-link">
              {intl.formatMessage(messages.backgroundJobs)}
              <Icon name={rightArrowSVG} size="24px" />
            </Link>
          </li>
        </Plug>
      )}
    </>
  );
}

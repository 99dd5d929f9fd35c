/** The frame of every page: title, Volto's toolbar with a back arrow, refusals. */
import React from 'react';
import { createPortal } from 'react-dom';
import { useSelector } from 'react-redux';
import { Link } from 'react-router-dom';
import { Container, Message } from 'semantic-ui-react';
import { useIntl } from 'react-intl';
import Helmet from '@plone/volto/helpers/Helmet/Helmet';
import Icon from '@plone/volto/components/theme/Icon/Icon';
import Toolbar from '@plone/volto/components/manage/Toolbar/Toolbar';
import Forbidden from '@plone/volto/components/theme/Forbidden/Forbidden';
import Unauthorized from '@plone/volto/components/theme/Unauthorized/Unauthorized';
import { useClient } from '@plone/volto/hooks';
import backSVG from '@plone/volto/icons/back.svg';
import { errorMessage, errorStatus } from '../helpers';
import messages from './messages';

export default function Page({ title, description, pathname, back, error, className, children }) {
  const intl = useIntl();
  const isClient = useClient();
  const toolbar = isClient && document.getElementById('toolbar');
  const loggedIn = useSelector((state) => Boolean(state.userSession?.token));
  const status = errorStatus(error);
  // Zope answers 401 to a logged-in user who lacks the permission, too.
  if (status === 401 || status === 403) {
    return loggedIn ? <Forbidden /> : <Unauthorized />;
  }
  return (
    <Container id="page-zasync" className={className}>
      <Helmet title={title} />
      <h1 className="documentFirstHeading">{title}</h1>
      {description && <p className="documentDescription">{description}</p>}
      {error && (
        <Message negative>
          {intl.formatMessage(messages.loadError, { message: errorMessage(error) })}
        </Message>
      )}
      {children}
      {toolbar &&
        createPortal(
          <Toolbar
            pathname={pathname}
            hideDefaultViewButtons
            inner={
              <Link to={back} className="item">
                <Icon
                  name={backSVG}
                  className="contents circled"
                  size="30px"
                  title={intl.formatMessage(messages.back)}
                />
              </Link>
            }
          />,
          toolbar,
        )}
    </Container>
  );
}

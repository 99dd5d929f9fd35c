/**
 * @plone-collective/volto-zasync: Volto pages for collective.zasync's background jobs.
 *
 *   /my-jobs                         My jobs (personal menu)
 *   <item>/background-jobs           an item's jobs ("More" menu, for who may modify it)
 *   /controlpanel/zasync             Site Setup → Background jobs (the backend's configlet)
 *   /controlpanel/zasync/jobs/<id>   one job
 *   /controlpanel/zasync/settings    the settings (plone.restapi's @controlpanels/zasync-settings)
 */
import clockSVG from '@plone/volto/icons/clock.svg';
import ContentJobs, { VIEW_NAME } from './components/ContentJobs';
import JobPage from './components/JobPage';
import JobsPanel, { PANEL } from './components/JobsPanel';
import Menus from './components/Menus';
import MyJobs from './components/MyJobs';
import Settings, { CONTROLPANEL_ID } from './components/Settings';
import zasync from './reducers';

/**
 * Site Setup lists the backend's "Background jobs" configlet (shown to those who may
 * use it, "Manage portal") by its settings panel: make it open the queues page.
 */
export function linkToPanel(filter) {
  return (controlpanels) =>
    filter(controlpanels).map((controlpanel) =>
      controlpanel['@id'].endsWith(`/${CONTROLPANEL_ID}`)
        ? { ...controlpanel, '@id': PANEL }
        : controlpanel,
    );
}

export default function applyConfig(config) {
  config.addonRoutes = [
    ...(config.addonRoutes || []),
    { path: '/my-jobs', component: MyJobs, exact: true },
    { path: `${PANEL}/settings`, component: Settings, exact: true },
    { path: `${PANEL}/jobs/:jobId`, component: JobPage, exact: true },
    { path: PANEL, component: JobsPanel, exact: true },
    { path: `/${VIEW_NAME}`, component: ContentJobs, exact: true },
    { path: `/**/${VIEW_NAME}`, component: ContentJobs, exact: true },
  ];
  config.addonReducers = { ...(config.addonReducers || {}), zasync };
  config.settings.appExtras = [
    ...(config.settings.appExtras || []),
    { match: '', component: Menus },
  ];
  config.settings.filterControlPanels = linkToPanel(
    config.settings.filterControlPanels || ((controlpanels) => controlpanels),
  );
  config.settings.controlPanelsIcons = {
    ...(config.settings.controlPanelsIcons || {}),
    zasync: clockSVG,
  };
  // Not content: Volto neither fetches nor shows an item at these paths.
  config.settings.nonContentRoutes = [
    ...(config.settings.nonContentRoutes || []),
    '/my-jobs',
    `/${VIEW_NAME}`,
  ];
  return config;
}

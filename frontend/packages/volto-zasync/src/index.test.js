import applyConfig from './index';

function voltoConfig() {
  return {
    addonRoutes: [],
    addonReducers: {},
    settings: {
      appExtras: [],
      nonContentRoutes: ['/contents'],
      controlPanelsIcons: { mail: 'mail.svg' },
      filterControlPanels: (panels) => panels.filter((panel) => !panel['@id'].endsWith('/markup')),
    },
  };
}

describe('applyConfig', () => {
  it('opens the queues page from the Site Setup item, keeping Volto\'s filter', () => {
    const config = applyConfig(voltoConfig());
    const panels = config.settings.filterControlPanels([
      { '@id': 'http://localhost:3000/@controlpanels/zasync-settings', title: 'Background jobs' },
      { '@id': 'http://localhost:3000/@controlpanels/markup', title: 'Markup' },
      { '@id': 'http://localhost:3000/@controlpanels/mail', title: 'Mail' },
    ]);
    expect(panels.map((panel) => panel['@id'])).toEqual([
      '/controlpanel/zasync',
      'http://localhost:3000/@controlpanels/mail',
    ]);
    expect(config.settings.controlPanelsIcons.mail).toBe('mail.svg');
    expect(config.settings.controlPanelsIcons.zasync).toBeTruthy();
  });

  it('adds the routes, the reducer, the toolbar links, and pages that are not content', () => {
    const config = applyConfig(voltoConfig());
    expect(config.addonRoutes.map((route) => route.path)).toEqual([
      '/my-jobs',
      '/controlpanel/zasync/settings',
      '/controlpanel/zasync/jobs/:jobId',
      '/controlpanel/zasync',
      '/background-jobs',
      '/**/background-jobs',
    ]);
    expect(config.addonReducers.zasync).toBeInstanceOf(Function);
    expect(config.settings.appExtras).toHaveLength(1);
    expect(config.settings.nonContentRoutes).toEqual(['/contents', '/my-jobs', '/background-jobs']);
  });
});

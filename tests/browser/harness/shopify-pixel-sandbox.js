// A stand-in for Shopify's custom-pixel sandbox: the globals a custom pixel gets, as Shopify
// documents them (https://shopify.dev/docs/api/web-pixels-api, "Custom Web Pixels": analytics,
// browser and init are already deconstructed; api.customerPrivacy for consent):
// - analytics.subscribe(name, callback)            .../web-pixels-api/standard-api/analytics
// - browser.cookie / sessionStorage / localStorage (every method returns a Promise)
//                                                  .../web-pixels-api/standard-api/browser
// - init: { context, data, customerPrivacy }      .../web-pixels-api/standard-api/init
// - api.customerPrivacy.subscribe('visitorConsentCollected', callback), the callback getting
//   { customerPrivacy: { analyticsProcessingAllowed, marketingAllowed,
//   preferencesProcessingAllowed, saleOfDataAllowed } }
//                                                  .../web-pixels-api/standard-api/customerprivacy
// Tests drive it through window.__shopify.publish(name, data) and .collectConsent(privacy).
(function () {
  var config = window.__pixelConfig || {};
  var subscribers = {};
  var consentSubscribers = [];
  var seq = 0;

  function asyncStorage(storage) {
    return {
      getItem: function (key) { return Promise.resolve(storage.getItem(key)); },
      setItem: function (key, value) { return Promise.resolve(storage.setItem(key, value)); },
      removeItem: function (key) { return Promise.resolve(storage.removeItem(key)); },
      key: function (index) { return Promise.resolve(storage.key(index)); },
      length: function () { return Promise.resolve(storage.length); },
      clear: function () { return Promise.resolve(storage.clear()); },
    };
  }

  var context = {
    document: {
      location: { href: location.href, pathname: location.pathname, search: location.search },
      referrer: '',
      title: document.title,
    },
    navigator: { language: navigator.language, userAgent: navigator.userAgent, cookieEnabled: true },
    window: { location: { href: location.href }, innerHeight: 800, innerWidth: 1200 },
  };

  window.analytics = {
    subscribe: function (name, callback) {
      (subscribers[name] = subscribers[name] || []).push(callback);
      return Promise.resolve();
    },
  };
  window.browser = {
    cookie: {
      get: function (name) {
        var match = document.cookie.split(/;\s*/).filter(function (part) {
          return part.indexOf(name + '=') === 0;
        })[0];
        return Promise.resolve(match ? decodeURIComponent(match.slice(name.length + 1)) : '');
      },
      set: function (cookieOrName, value) {
        document.cookie = value === undefined ? cookieOrName : cookieOrName + '=' + encodeURIComponent(value);
        return Promise.resolve(document.cookie);
      },
    },
    sessionStorage: asyncStorage(window.sessionStorage),
    localStorage: asyncStorage(window.localStorage),
    sendBeacon: function () { return Promise.resolve(false); },
  };
  window.init = {
    context: context,
    data: { customer: null, cart: null, shop: { name: 'Test shop', myshopifyDomain: 'test.myshopify.com' } },
    customerPrivacy: config.customerPrivacy,
  };
  window.api = {
    customerPrivacy: {
      subscribe: function (name, callback) {
        if (name === 'visitorConsentCollected') {
          consentSubscribers.push(callback);
        }
        return Promise.resolve();
      },
    },
  };

  window.__shopify = {
    publish: function (name, data) {
      seq += 1;
      var event = {
        id: 'sh-event-' + seq,
        clientId: 'client-id-1',
        name: name,
        seq: seq,
        timestamp: new Date().toISOString(),
        type: 'standard',
        context: context,
        data: data,
      };
      (subscribers[name] || []).forEach(function (callback) { callback(event); });
      (subscribers.all_events || []).forEach(function (callback) { callback(event); });
      (subscribers.all_standard_events || []).forEach(function (callback) { callback(event); });
    },
    collectConsent: function (customerPrivacy) {
      consentSubscribers.forEach(function (callback) { callback({ customerPrivacy: customerPrivacy }); });
    },
  };
})();

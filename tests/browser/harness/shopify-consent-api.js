// A stand-in for the storefront's Customer Privacy API as Shopify documents it
// (https://shopify.dev/docs/api/customer-privacy): window.Shopify.loadFeatures([{name:
// 'consent-tracking-api', version: '0.1'}], callback) makes window.Shopify.customerPrivacy
// available, whose ...Allowed() methods say what processing is allowed; a choice made later on
// the page is the document event visitorConsentCollected, its detail carrying marketingAllowed,
// saleOfDataAllowed, analyticsAllowed, preferencesAllowed.
// currentVisitorConsent() gives the visitor's choice per purpose ('yes', 'no', or '' before they
// choose) and getRegion() their country and region code ('DEBE', 'USCA', '' unknown).
// Tests set window.__consent (and window.__choice, window.__region) before this script and call
// window.__grantConsent() or window.__collectConsent(choice, allowed) later.
(function () {
  var consent = window.__consent || { marketing: true, saleOfData: true, analytics: true, preferences: true };
  var choice = window.__choice || { marketing: '', analytics: '', preferences: '', sale_of_data: '' };
  window.Shopify = window.Shopify || {};
  window.Shopify.routes = { root: '/' };
  window.Shopify.loadFeatures = function (features, callback) {
    window.Shopify.customerPrivacy = {
      marketingAllowed: function () { return consent.marketing; },
      saleOfDataAllowed: function () { return consent.saleOfData; },
      analyticsProcessingAllowed: function () { return consent.analytics; },
      preferencesProcessingAllowed: function () { return consent.preferences; },
      currentVisitorConsent: function () {
        return { marketing: choice.marketing, analytics: choice.analytics, preferences: choice.preferences,
                 sale_of_data: choice.sale_of_data };
      },
      getRegion: function () { return window.__region || ''; },
    };
    setTimeout(function () { callback(undefined); }, 0);
  };
  // The banner's choice on the page: the API answers the new state, then the document event fires
  // with what is allowed now (Shopify's VisitorConsentCollected detail).
  window.__collectConsent = function (newChoice, allowed) {
    choice = newChoice;
    consent = allowed;
    document.dispatchEvent(new CustomEvent('visitorConsentCollected', {
      detail: { analyticsAllowed: allowed.analytics, firstPartyMarketingAllowed: allowed.marketing,
                marketingAllowed: allowed.marketing, preferencesAllowed: allowed.preferences,
                saleOfDataAllowed: allowed.saleOfData, thirdPartyMarketingAllowed: allowed.marketing },
    }));
  };
  window.__grantConsent = function () {
    consent = { marketing: true, saleOfData: true, analytics: true, preferences: true };
    document.dispatchEvent(new CustomEvent('visitorConsentCollected', {
      detail: { marketingAllowed: true, saleOfDataAllowed: true, analyticsAllowed: true, preferencesAllowed: true },
    }));
  };
})();

<?php
/**
 * Stand-ins for the WordPress, WP Consent API and WooCommerce calls web/woocommerce-consent.php
 * makes, each as its project documents and implements it:
 *  - WordPress: add_action / do_action / apply_filters (the plugin API, here without priorities
 *    beyond registration order), wp_json_encode (json_encode of valid UTF-8 data);
 *  - WP Consent API (Really-Simple-Plugins/wp-consent-level-api, api.php and config.php):
 *    wp_get_consent_type() is the 'wp_get_consent_type' filter over false; wp_has_consent() is true
 *    without a consent type, true under "optout" when the category's cookie is not set, else true
 *    only for the cookie value "allow"; cookies are "<prefix>_<category>", prefix 'wp_consent'
 *    through the 'wp_consent_cookie_prefix' filter;
 *  - WooCommerce: WC_Order::update_meta_data / get_meta / get_meta_data (a meta row per key).
 * The scenario (consent type, cookies, whether the WP Consent API is active) comes from the
 * environment variable PINRELAY_SCENARIO, as JSON.
 */

define( 'ABSPATH', __DIR__ . '/' );

$GLOBALS['pinrelay_test_hooks']   = array();
$GLOBALS['pinrelay_test_filters'] = array();
$GLOBALS['pinrelay_test_calls']   = array();

function add_action( $hook, $callback, $priority = 10, $accepted_args = 1 ) {
	$GLOBALS['pinrelay_test_hooks'][ $hook ][] = array( $callback, $accepted_args );
	return true;
}

function do_action( $hook, ...$args ) {
	foreach ( $GLOBALS['pinrelay_test_hooks'][ $hook ] ?? array() as list( $callback, $accepted ) ) {
		call_user_func_array( $callback, array_slice( $args, 0, $accepted ) );
	}
}

function add_filter( $hook, $callback ) {
	$GLOBALS['pinrelay_test_filters'][ $hook ][] = $callback;
	return true;
}

function apply_filters( $hook, $value, ...$args ) {
	$GLOBALS['pinrelay_test_calls'][] = "apply_filters:$hook";
	foreach ( $GLOBALS['pinrelay_test_filters'][ $hook ] ?? array() as $callback ) {
		$value = call_user_func( $callback, $value, ...$args );
	}
	return $value;
}

function wp_json_encode( $data, $options = 0, $depth = 512 ) {
	return json_encode( $data, $options, $depth );
}

$scenario = json_decode( getenv( 'PINRELAY_SCENARIO' ) ?: '{}', true );
$_COOKIE  = $scenario['cookies'] ?? array();

if ( $scenario['consent_api'] ?? true ) {
	function wp_get_consent_type() {
		$GLOBALS['pinrelay_test_calls'][] = 'wp_get_consent_type';
		return apply_filters( 'wp_get_consent_type', false );
	}

	function wp_has_consent( $category, $requested_by = false ) {
		$GLOBALS['pinrelay_test_calls'][] = "wp_has_consent:$category";
		$type   = wp_get_consent_type();
		$cookie = apply_filters( 'wp_consent_cookie_prefix', 'wp_consent' ) . '_' . $category;
		if ( ! $type ) {
			$has = true;
		} elseif ( false !== strpos( $type, 'optout' ) && ! isset( $_COOKIE[ $cookie ] ) ) {
			$has = true;
		} else {
			$has = isset( $_COOKIE[ $cookie ] ) && 'allow' === $_COOKIE[ $cookie ];
		}
		return apply_filters( 'wp_has_consent', $has, $category, $requested_by );
	}

	// A banner plugin registers the consent type through the API's filter (e.g. by region).
	if ( isset( $scenario['consent_type'] ) ) {
		add_filter( 'wp_get_consent_type', function () use ( $scenario ) {
			return $scenario['consent_type'];
		} );
	}
	if ( isset( $scenario['cookie_prefix'] ) ) {
		add_filter( 'wp_consent_cookie_prefix', function () use ( $scenario ) {
			return $scenario['cookie_prefix'];
		} );
	}
}

class WC_Order {
	private $meta = array();

	public function update_meta_data( $key, $value, $meta_id = 0 ) {
		$GLOBALS['pinrelay_test_calls'][] = "update_meta_data:$key";
		$this->meta[ $key ] = $value;
	}

	public function get_meta( $key = '', $single = true, $context = 'view' ) {
		return $this->meta[ $key ] ?? '';
	}

	/** The meta rows as the REST API (and so the order webhooks) give them in meta_data. */
	public function get_meta_data() {
		$rows = array();
		$id   = 100;
		foreach ( $this->meta as $key => $value ) {
			$rows[] = array( 'id' => $id++, 'key' => $key, 'value' => $value );
		}
		return $rows;
	}
}

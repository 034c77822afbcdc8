<?php
// Router for PHP's built-in web server: what nginx's `try_files $uri $uri/ /index.php?$args`
// does. Existing files (PHP or static) are served as they are; every other path is handed to
// WordPress's front controller, so pretty permalinks such as /sample-page/ work.
$root = rtrim($_SERVER['DOCUMENT_ROOT'], '/');
$path = rawurldecode(parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH) ?? '/');
$file = $root . $path;

if ($path !== '/' && strpos($path, '..') === false) {
    if (is_file($file)) {
        return false;
    }
    if (is_dir($file) && (is_file($file . '/index.php') || is_file($file . '/index.html'))) {
        return false;
    }
}

$_SERVER['SCRIPT_FILENAME'] = $root . '/index.php';
$_SERVER['SCRIPT_NAME'] = '/index.php';
$_SERVER['PHP_SELF'] = '/index.php';
chdir($root);
require $root . '/index.php';
